"""Which seeds and how many threads the chapters use: overridable for robustness builds.

Every chapter asks ``chapter_seeds(n)`` for its seeds instead of writing ``(0, 1, 2)``. With the
environment variable ``RESNET_COURSE_SEED_SET`` unset (or ``0``) the seeds are ``0 .. n-1``; with
``RESNET_COURSE_SEED_SET=k`` they are ``1000k .. 1000k + n - 1``: a second, disjoint seed set on
which every conclusion the book states must still hold (issue "claims that hold on any machine").
The execution cache keys on the notebook's source, not on the environment, so a build under
another seed set needs its own build folder (``make book SEED_SET=k`` does that).
``chapter_threads()`` is the number of PyTorch threads a chapter runs on: 1 by default (the
build runs several chapters at once, one per core), ``RESNET_COURSE_THREADS=k`` for a build that
checks the conclusions do not depend on the thread count (reductions split differently).
Used by every chapter.
"""

from __future__ import annotations

import os

ENV_VAR = "RESNET_COURSE_SEED_SET"
THREADS_ENV_VAR = "RESNET_COURSE_THREADS"
SEEDS_PER_SET = 1000


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def seed_set() -> int:
    """The seed set chosen by ``RESNET_COURSE_SEED_SET`` (0 when unset); ValueError if invalid."""
    return _env_int(ENV_VAR, default=0, minimum=0)


def chapter_threads() -> int:
    """PyTorch threads for a chapter: ``RESNET_COURSE_THREADS`` (1 when unset)."""
    return _env_int(THREADS_ENV_VAR, default=1, minimum=1)


def chapter_seeds(n: int) -> tuple[int, ...]:
    """``n`` seeds of the chosen set: ``base, base + 1, ..., base + n - 1``, base = 1000 * set."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= SEEDS_PER_SET:
        raise ValueError(f"n must be an integer from 1 to {SEEDS_PER_SET}, got {n!r}")
    base = SEEDS_PER_SET * seed_set()
    return tuple(range(base, base + n))
