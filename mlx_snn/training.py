"""Training schedules.

:func:`incremental_time_steps` is the incremental time-step strategy of PTTFS
(Che et al.): train first at ``T = 1``, where the temporal selector decoder is a
membrane decoder, then grow ``T`` stage by stage so that each stage starts from
the previous one's weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ._checks import check_int

__all__ = ["incremental_time_steps"]


def incremental_time_steps(
    epoch: int,
    steps: Sequence[int] = (1, 2, 4),
    epochs_per_stage: int | Sequence[int] = 1,
) -> int:
    """Number of time steps ``T`` to train with at ``epoch`` (0-based).

    Stage ``k`` uses ``steps[k]`` for ``epochs_per_stage`` epochs (or
    ``epochs_per_stage[k]`` when a sequence is given); after the last stage the
    last value is kept. Example: ``steps=(1, 2, 4), epochs_per_stage=2`` gives
    ``1, 1, 2, 2, 4, 4, 4, ...``.

    Raises:
        ValueError: ``epoch < 0``, empty or decreasing ``steps``, values ``< 1``,
            ``epochs_per_stage`` of the wrong length.
        TypeError: non-integer arguments.
    """
    check_int("epoch", epoch, minimum=0)
    steps = tuple(steps)
    if not steps:
        raise ValueError("steps must hold at least one number of time steps; got ()")
    for t in steps:
        check_int("steps[i]", t, minimum=1)
    if any(b < a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"steps must be non-decreasing; got {steps}")
    if isinstance(epochs_per_stage, int) and not isinstance(epochs_per_stage, bool):
        durations = (epochs_per_stage,) * len(steps)
    else:
        durations = tuple(epochs_per_stage)
        if len(durations) != len(steps):
            raise ValueError(
                f"epochs_per_stage must be an int or hold one value per stage "
                f"({len(steps)}); got {len(durations)} values"
            )
    for d in durations:
        check_int("epochs_per_stage", d, minimum=1)
    end = 0
    for t, d in zip(steps, durations, strict=True):
        end += d
        if epoch < end:
            return t
    return steps[-1]
