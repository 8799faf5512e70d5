"""A small fake DVS128-Gesture in tonic's on-disk layout, for tests, smoke runs and benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._checks import check_int

__all__ = ["synthetic_dvs_gesture", "synthetic_recording"]

_LIGHTING = ("fluorescent", "led", "natural", "lab", "fluorescent_led")


def synthetic_recording(
    label: int, rng: np.random.Generator, num_events: int = 2000, duration_ms: int = 1500
) -> np.ndarray:
    """One fake recording as tonic stores it: float64 ``(N, 4)`` rows ``x, y, p, t_ms``.

    A blob of events (spread 4 pixels) crosses the 128 x 128 sensor through its centre in the
    direction ``2 pi label / 11``, with 10% uniform noise events; polarity is random. Time
    stamps are whole milliseconds in ``[0, duration_ms]``, sorted. Gestures of different labels
    differ in direction only, so a network can learn them from a few samples.
    """
    check_int("label", label, minimum=0)
    check_int("num_events", num_events, minimum=1)
    check_int("duration_ms", duration_ms, minimum=1)
    t = np.sort(rng.integers(0, duration_ms + 1, num_events))
    phase = t / duration_ms - 0.5
    angle = 2 * np.pi * label / 11 + rng.normal(0, 0.1)
    centre = 64 + rng.normal(0, 4, 2)
    x = centre[0] + 80 * phase * np.cos(angle) + rng.normal(0, 4, num_events)
    y = centre[1] + 80 * phase * np.sin(angle) + rng.normal(0, 4, num_events)
    noise = rng.random(num_events) < 0.1
    x[noise] = rng.integers(0, 128, noise.sum())
    y[noise] = rng.integers(0, 128, noise.sum())
    p = rng.integers(0, 2, num_events)
    xy = np.clip(np.floor(np.stack([x, y], axis=1)), 0, 127)
    return np.column_stack([xy, p, t]).astype(np.float64)


def synthetic_dvs_gesture(
    root: str | os.PathLike,
    sessions: tuple[int, int] = (10, 10),
    num_events: int = 2000,
    seed: int = 0,
) -> Path:
    """Write a fake DVSGesture tree under ``root`` in tonic's layout; return ``root``.

    ``root/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy .. 10.npy`` and so on:
    ``sessions[0]`` training sessions (users 1, 2, ...) and ``sessions[1]`` test sessions
    (users from 24, as in the real split), each with one
    :func:`~mlx_snn.data.dvs_synthetic.synthetic_recording` per label.
    Empty placeholder archives ``ibmGestureTrain.tar.gz`` / ``ibmGestureTest.tar.gz`` sit next to
    the folders: with them and at least 100 recordings per split (the default 10 sessions give
    110), ``tonic.datasets.DVSGesture(root)`` itself finds the data and does not download.
    ``root`` can then be passed as ``data_dir`` to :func:`mlx_snn.data.dvs_gesture`.
    """
    for s in sessions:
        check_int("sessions[i]", s, minimum=0)
    rng = np.random.default_rng(seed)
    base = Path(root) / "DVSGesture"
    for folder, count, first_user in (
        ("ibmGestureTrain", sessions[0], 1),
        ("ibmGestureTest", sessions[1], 24),
    ):
        for k in range(count):
            session = base / folder / f"user{first_user + k:02d}_{_LIGHTING[k % len(_LIGHTING)]}"
            session.mkdir(parents=True, exist_ok=True)
            for label in range(11):
                duration = int(rng.integers(1000, 2000))
                events = synthetic_recording(label, rng, num_events, duration)
                np.save(session / f"{label}.npy", events)
        (base / f"{folder}.tar.gz").touch()
    return Path(root)
