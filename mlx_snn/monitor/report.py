"""The cost report: per-layer counts, the energy estimate, a table and a JSON export."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

from .counts import FIELDS, LayerStats

__all__ = ["HOROWITZ_45NM", "CostReport", "EnergyCosts"]

HOROWITZ_45NM = (
    "M. Horowitz, 'Computing's energy problem (and what we can do about it)', ISSCC 2014, "
    "45 nm, 0.9 V: 32-bit float add 0.9 pJ, 32-bit float multiply 3.7 pJ (a multiply-add "
    "4.6 pJ), 64-bit read from an 8 KB SRAM cache 10 pJ (1.25 pJ per byte)"
)


@dataclass(frozen=True)
class EnergyCosts:
    """Energy per operation and per byte of memory traffic, in picojoules.

    The defaults are Horowitz's 45 nm figures (:data:`HOROWITZ_45NM`) for fp32 arithmetic
    and an 8 KB on-chip SRAM. The same table gives, for other choices: int32 add 0.1 pJ,
    int32 multiply 3.1 pJ, int8 add 0.03 pJ, int8 multiply 0.2 pJ, fp16 add 0.4 pJ,
    fp16 multiply 1.1 pJ; a 64-bit read costs 20 pJ from a 32 KB cache, 100 pJ from 1 MB and
    1.3-2.6 nJ from DRAM (2.5, 12.5 and about 160-325 pJ per byte). Writes are charged as
    reads. Newer process nodes cost less; the ratio of memory to arithmetic is what matters.

    Args:
        add_pj (float): one accumulate (AC), e.g. a weight added on a spike. Default 0.9.
        mac_pj (float): one multiply-accumulate (MAC). Default 4.6.
        mult_pj (float): one multiplication alone. Default 3.7.
        memory_pj_per_byte (float): one byte read or written. Default 1.25.
        source (str): where the figures come from (printed with the estimate).
    """

    add_pj: float = 0.9
    mac_pj: float = 4.6
    mult_pj: float = 3.7
    memory_pj_per_byte: float = 1.25
    source: str = HOROWITZ_45NM

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "source":
                if not isinstance(value, str):
                    raise TypeError(f"source must be a str; got {type(value).__name__}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{f.name} must be a number (picojoules); got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{f.name} must be a finite number >= 0 (pJ); got {value!r}")

    def compute_pj(self, counts: dict[str, int]) -> float:
        """Compute energy (pJ) of operation ``counts`` (keys ``ac``, ``mac``, ``mult``)."""
        return (
            counts["ac"] * self.add_pj + counts["mac"] * self.mac_pj + counts["mult"] * self.mult_pj
        )

    def memory_pj(self, counts: dict[str, int]) -> float:
        """Memory energy (pJ) of the bytes in ``counts`` (weight and state reads, writes)."""
        moved = counts["weight_read"] + counts["state_read"] + counts["state_write"]
        return moved * self.memory_pj_per_byte


COST_HEADERS = [
    "layer",
    "type",
    *("SNN AC", "SNN MAC", "SNN mult", "SNN W read", "SNN S r/w"),
    *("ANN AC", "ANN MAC", "ANN W read", "ANN S r/w"),
]
ENERGY_KEYS = ("compute_pj", "memory_pj", "total_pj")


def _sum(layers: list[LayerStats], side: str) -> dict[str, int]:
    return {k: sum(getattr(s, side)[k] for s in layers) for k in FIELDS}


def _energy(costs: EnergyCosts, counts: dict[str, int], samples: int) -> dict[str, float]:
    compute, memory = costs.compute_pj(counts) / samples, costs.memory_pj(counts) / samples
    return {"compute_pj": compute, "memory_pj": memory, "total_pj": compute + memory}


def _si(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _joules(pj: float) -> str:
    for scale, unit in ((1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if pj >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def _grid(headers: list[str], rows: list[list[str]], left: int = 2) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "-" * len(line(headers))
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


@dataclass
class CostReport:
    """Counts of a :class:`~mlx_snn.monitor.Monitor` run; per-sample views and energy.

    Attributes:
        layers: :class:`LayerStats` of the counted modules called, in call order.
        samples: samples recorded (the batch sizes of every recorded forward, summed).
        forwards: forward passes recorded.
        not_called: modules with a formula that no recorded forward called.
        not_counted: modules without a formula (their work is in neither total).
    """

    layers: list[LayerStats]
    samples: int
    forwards: int
    not_called: list[LayerStats]
    not_counted: list[LayerStats]

    def _need_samples(self) -> None:
        if self.samples == 0:
            raise ValueError("no forward pass was recorded: call the model inside the Monitor")

    def totals(self) -> dict[str, dict[str, int]]:
        """Operation and byte totals: ``{"snn": {...}, "ann": {...}}`` over every layer."""
        return {"snn": _sum(self.layers, "snn"), "ann": _sum(self.layers, "ann")}

    def energy(self, costs: EnergyCosts | None = None) -> dict:
        """Energy per sample of the SNN as run and of the non-spiking network, in pJ.

        Each gives ``compute_pj``, ``memory_pj`` (traffic: kept apart, it often
        dominates) and ``total_pj``. Raises ``ValueError`` when nothing was recorded.
        """
        self._need_samples()
        costs = EnergyCosts() if costs is None else costs
        if not isinstance(costs, EnergyCosts):
            raise TypeError(f"costs must be an EnergyCosts; got {type(costs).__name__}")
        totals = self.totals()
        return {
            "costs": dataclasses.asdict(costs),
            "snn": _energy(costs, totals["snn"], self.samples),
            "ann": _energy(costs, totals["ann"], self.samples),
        }

    def _layer_dict(self, s: LayerStats, costs: EnergyCosts) -> dict:
        d = {
            k: getattr(s, k)
            for k in ("path", "type", "kind", "note", "calls", "frames", "per_frame_frames")
        }
        d["frames_per_sample"] = s.frames / self.samples
        d["per_frame_frames_per_sample"] = s.per_frame_frames / self.samples
        if s.kind in ("synapse", "aggregate"):
            d["input_events"] = s.in_events
            d["input_elements"] = s.in_elements
            d["input_graded_calls"] = s.graded_calls
        if s.kind == "synapse":
            d.update(params=s.params, synops=s.synops, dense_mac=s.dense_mac)
        if s.kind == "neuron" and s.neuron_steps and s.sample_neurons:
            d["neurons"] = s.neurons
            d["spikes"] = s.spikes
            d["rate"] = s.spikes / s.neuron_steps
            d["rate_by_step"] = [
                k / n for k, n in zip(s.spikes_by_step, s.neurons_by_step, strict=True)
            ]
            d["silent_fraction"] = 1 - s.fired_pairs / s.sample_neurons
            counts = list(s.spikes_by_neuron.values())
            d["dead_fraction"] = sum(int((c == 0).sum()) for c in counts) / s.neurons
        d["snn"], d["ann"] = dict(s.snn), dict(s.ann)
        d["energy_pj_per_sample"] = {
            side: _energy(costs, getattr(s, side), self.samples) for side in ("snn", "ann")
        }
        return d

    def to_dict(self, costs: EnergyCosts | None = None) -> dict:
        """Everything as plain Python: totals (not per sample) per layer, energy per sample."""
        self._need_samples()
        costs = EnergyCosts() if costs is None else costs
        return {
            "samples": self.samples,
            "forwards": self.forwards,
            "layers": [self._layer_dict(s, costs) for s in self.layers],
            "totals": self.totals(),
            "energy_pj_per_sample": self.energy(costs),
            "not_counted": [
                {"path": s.path, "type": s.type, "note": s.note, "calls": s.calls}
                for s in self.not_counted
            ],
            "not_called": [{"path": s.path, "type": s.type} for s in self.not_called],
        }

    def to_json(self, path: str | Path | None = None, costs: EnergyCosts | None = None) -> str:
        """The :meth:`to_dict` as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(costs), indent=2) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    def table(self, costs: EnergyCosts | None = None) -> str:
        """Per-sample activity, cost and energy tables as text (see the package docstring)."""
        if self.samples == 0:
            return "snn.monitor: no forward pass recorded"
        costs = EnergyCosts() if costs is None else costs
        n = self.samples
        activity, cost = [], []
        for s in self.layers:
            frames = _si(s.frames / n)
            if s.kind == "aggregate":
                frames = f"{_si(s.per_frame_frames / n)}->{frames}"
            elif s.per_frame_frames != s.frames:
                frames = f"{frames} of {_si(s.per_frame_frames / n)}"
            row = [s.path, s.type, frames, "-", "-", "-", "-", "-"]
            if s.kind == "synapse":
                row[6] = _si(s.synops / n)
                row[7] = "graded" if s.graded_calls else "spikes"
            elif s.kind == "aggregate":
                row[7] = "graded" if s.graded_calls else "spikes"
            elif s.kind == "neuron" and s.neuron_steps and s.sample_neurons:
                row[3] = _si(s.spikes / n)
                row[4] = f"{s.spikes / s.neuron_steps:.4f}"
                row[5] = f"{100 * (1 - s.fired_pairs / s.sample_neurons):.1f}%"
            activity.append(row)
            cost.append([s.path, s.type, *(_si(v / n) for v in _traffic_row(s))])
        totals = self.totals()
        total_row = ["total", "", *(_si(v / n) for v in _traffic_row_from(totals))]
        energy = self.energy(costs)
        out = [
            f"snn.monitor: {n} samples in {self.forwards} forward passes; counts per sample",
            "",
            _grid(
                ["layer", "type", "frames", "spikes", "rate", "silent", "SynOps", "input"],
                activity,
            ),
            "",
            _grid(
                COST_HEADERS,
                [*cost, total_row],
            ),
            "",
            f"energy per sample (estimate: add {costs.add_pj} pJ, mult-add {costs.mac_pj} pJ, "
            f"mult {costs.mult_pj} pJ, memory {costs.memory_pj_per_byte} pJ/byte)",
            _grid(
                ["network", "compute", "memory", "total"],
                [
                    [label, *(_joules(energy[side][k]) for k in ENERGY_KEYS)]
                    for label, side in (("SNN as run", "snn"), ("non-spiking (ANN)", "ann"))
                ],
                left=1,
            ),
            f"source: {costs.source}",
            "memory is the traffic term (bytes: W = weights read, S = state read and "
            "written): operation counts alone are not energy",
        ]
        out += _omissions(self.not_counted, self.not_called)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _traffic_row(s: LayerStats) -> list[int]:
    return _traffic_row_from({"snn": s.snn, "ann": s.ann})


def _traffic_row_from(c: dict[str, dict[str, int]]) -> list[int]:
    snn, ann = c["snn"], c["ann"]
    return [
        *(snn[k] for k in ("ac", "mac", "mult", "weight_read")),
        snn["state_read"] + snn["state_write"],
        *(ann[k] for k in ("ac", "mac", "weight_read")),
        ann["state_read"] + ann["state_write"],
    ]


def _omissions(not_counted: list[LayerStats], not_called: list[LayerStats]) -> list[str]:
    lines = []
    if not_counted:
        by_type: dict[str, list[str]] = {}
        for s in not_counted:
            calls = f"{s.calls} call" + ("" if s.calls == 1 else "s")
            if s.note.startswith("no cost formula"):
                by_type.setdefault(s.type, []).append(f"{s.path} ({calls})")
            elif "plain callable" in s.note:
                by_type.setdefault(s.type, []).append(f"{s.path} ({s.note})")
            else:
                by_type.setdefault(s.type, []).append(f"{s.path} ({s.note}; {calls})")
        parts = [f"{t}: {', '.join(paths)}" for t, paths in by_type.items()]
        lines.append(
            "not counted (no cost formula; their work is in neither total): " + "; ".join(parts)
        )
    if not_called:
        lines.append("not called: " + ", ".join(f"{s.path} ({s.type})" for s in not_called))
    return lines
