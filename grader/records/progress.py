"""What `autograde` shows while it runs and when it ends.

* A tqdm bar on stderr: submissions done of this run (or shard), flagged and failed so far, and
  tqdm's estimate of the time left. Off when stderr is not a terminal (CI logs, batch jobs:
  Kubernetes and Slurm capture output to files) and with --quiet.
* A one-screen summary: how many were graded, how many carry each flag, the slowest
  submissions, and the throughput of the submissions graded in this run.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable

from tqdm import tqdm

SLOWEST = 5


class Progress:
    """Counts outcomes as they arrive; draws the bar when `bar` is True."""

    def __init__(self, bar: bool = False, quiet: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.bar_enabled = bar and not quiet
        self.quiet = quiet
        self._log = log
        self._bar: tqdm | None = None
        self.flagged = 0
        self.failed = 0
        self.resumed: set[tuple[str, str]] = set()

    @classmethod
    def for_terminal(cls, quiet: bool = False) -> Progress:
        return cls(bar=sys.stderr.isatty(), quiet=quiet)

    def start(self, total: int) -> None:
        if self.bar_enabled:
            self._bar = tqdm(total=total, file=sys.stderr, unit="sub", dynamic_ncols=True,
                             desc="grading")

    def update(self, outcome, resumed: bool = False) -> None:
        """One submission finished (or was taken over from an earlier run)."""
        if resumed:
            self.resumed.add((outcome.student_id, outcome.assignment_id))
        self.flagged += bool(outcome.flags)
        self.failed += not outcome.graded
        if self._bar is not None:
            self._bar.set_postfix(flagged=self.flagged, failed=self.failed, refresh=False)
            self._bar.update(1)

    def write(self, line: str) -> None:
        """A log line: above the bar while it is drawn; --quiet keeps warnings and errors only."""
        if self.quiet and not line.startswith(("warning", "error")):
            return
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            self._log(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def summary(outcomes: Iterable, seconds: float, resumed: set[tuple[str, str]] = frozenset(),
            slowest: int = SLOWEST) -> list[str]:
    """Lines of the end-of-run summary (fits one screen whatever the class size)."""
    outcomes = list(outcomes)
    graded = [o for o in outcomes if o.graded]
    fresh = [o for o in outcomes if (o.student_id, o.assignment_id) not in resumed]
    lines = [f"graded {len(graded)}/{len(outcomes)} submission(s) in {seconds:.1f} s"
             + (f" ({len(outcomes) - len(fresh)} kept from an earlier run)" if resumed else "")]
    if fresh and seconds > 0:
        lines.append(f"throughput: {60 * len(fresh) / seconds:.1f} submissions per minute "
                     f"({seconds / len(fresh):.1f} s each, wall clock)")
    counts = Counter(flag for o in outcomes for flag in o.flags)
    lines.append("flagged: " + (", ".join(f"{flag} {n}" for flag, n in
                                          sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
                                or "none"))
    ran = sorted((o for o in fresh if o.seconds > 0), key=lambda o: -o.seconds)[:slowest]
    if ran:
        lines.append("slowest: " + ", ".join(f"{o.student_id}/{o.assignment_id} "
                                             f"{o.seconds:.1f} s" for o in ran))
    return lines
