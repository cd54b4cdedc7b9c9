"""Measure autograde throughput on the real assignments; extrapolate to a large class.

    .venv/bin/python deploy/measure_throughput.py --copies 2 --jobs 1 2

Builds a class of solution copies (full marks) and one untouched release (0 points) per
assignment, grades it once per --jobs value in a fresh course directory, and prints
submissions per minute (wall clock), the CPU seconds the grader used (with --no-sandbox its
kernels too: sandboxed kernels are not reaped into the grader's rusage), and the
wall time 10,000 submissions would take on W machines like this one running `--jobs J`:
10,000 / (rate x W), assuming the shards do not slow each other down (the shared gradebook
and file server are not measured here). Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from submissions import grader_env, make_submission, released_notebook, write_submissions  # noqa: E402, I001

from grader.bridge.course import Roots, list_assignments  # noqa: E402


def build_class(root: Path, copies: int) -> int:
    count = 0
    for aid in list_assignments(Roots.from_root(REPO).solutions):
        notebooks = {f"solved{i}": make_submission(aid) for i in range(copies)}
        notebooks["release"] = released_notebook(aid)
        write_submissions(root, aid, notebooks)
        count += len(notebooks)
    return count


def grade(submissions: Path, workdir: Path, jobs: int, extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "grader", "autograde", str(submissions),
                           "--workdir", str(workdir), "--jobs", str(jobs), "--quiet", *extra],
                          cwd=REPO, env=grader_env(), capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"autograde --jobs {jobs} failed:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"jobs": jobs, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "summary": proc.stdout.strip().splitlines()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="solution copies per assignment")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--class-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without bubblewrap: then the CPU time includes the kernels "
                        "(sandboxed kernels are not reaped into the grader's rusage)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        n = build_class(Path(tmp) / "submissions", args.copies)
        for jobs in args.jobs:
            r = grade(Path(tmp) / "submissions", Path(tmp) / f"work{jobs}", jobs,
                      ["--no-sandbox"] if args.no_sandbox else [])
            r["submissions"] = n
            r["per_minute"] = round(60 * n / r["wall_s"], 2)
            r["cpu_s_per_submission"] = round(r["cpu_s"] / n, 2)
            r["hours_for_class"] = {w: round(args.class_size / (r["per_minute"] * w) / 60, 2)
                                    for w in args.workers}
            results.append(r)
            print(f"--jobs {jobs}: {n} submissions in {r['wall_s']} s wall = "
                  f"{r['per_minute']}/min; CPU {r['cpu_s']} s ({r['cpu_s_per_submission']} s "
                  "each)")
            for line in r["summary"]:
                print("   ", line)
            for w, hours in r["hours_for_class"].items():
                print(f"    {args.class_size} submissions on {w} such machine(s): {hours} h")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
