"""Which seeds the chapters' experiments use: one place, overridable for a robustness build.

Every chapter asks ``chapter_seeds(n)`` for its seeds instead of writing ``(0, 1, 2)``. With the
environment variable ``RESNET_COURSE_SEED_SET`` unset (or ``0``) the seeds are ``0 .. n-1``; with
``RESNET_COURSE_SEED_SET=k`` they are ``1000k .. 1000k + n - 1``: a second, disjoint seed set on
which every conclusion the book states must still hold (issue "claims that hold on any machine").
The execution cache keys on the notebook's source, not on the environment, so a build under
another seed set needs its own build folder (``make book SEED_SET=k`` does that).
Used by every chapter that draws data, weights or batches.
"""

from __future__ import annotations

import os

ENV_VAR = "RESNET_COURSE_SEED_SET"
SEEDS_PER_SET = 1000


def seed_set() -> int:
    """The seed set chosen by ``RESNET_COURSE_SEED_SET`` (0 when unset); ValueError if invalid."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{ENV_VAR} must be a non-negative integer, got {value}")
    return value


def chapter_seeds(n: int) -> tuple[int, ...]:
    """``n`` seeds of the chosen set: ``base, base + 1, ..., base + n - 1``, base = 1000 * set."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= SEEDS_PER_SET:
        raise ValueError(f"n must be an integer from 1 to {SEEDS_PER_SET}, got {n!r}")
    base = SEEDS_PER_SET * seed_set()
    return tuple(range(base, base + n))
