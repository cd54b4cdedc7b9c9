"""The Kubernetes and Slurm recipes in deploy/ run the command the grader expects.

Kubernetes: the Indexed Job's YAML loads, its command (after Kubernetes' $(VAR) expansion from
the container's env) parses with the grader's argparse, and pod index i grades --shard i/N with
N = completions. Slurm: the batch script itself runs under bash with a fake `python` that
records its arguments, for every task id of its #SBATCH --array, ids from 0 or from 1.
Together the N shards cover every submission exactly once (the split is grader.records.shard's).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from grader.commands.cli import build_parser
from grader.records.shard import Shard

JOB = REPO / "deploy" / "kubernetes" / "autograde-job.yaml"
SBATCH = REPO / "deploy" / "slurm" / "autograde.sbatch"
PAIRS = [(f"s{i}", a) for i in range(40) for a in ("ex1_degradation", "ex5_gpu_training")]


def _grader_args(argv: list[str]):
    """argparse namespace of `python -m grader ...` (argv[0] is the interpreter)."""
    assert argv[1:3] == ["-m", "grader"], argv
    return build_parser().parse_args(argv[3:])


def _covers_once(shards: list[Shard]) -> None:
    for student, assignment in PAIRS:
        assert sum(s.owns(student, assignment) for s in shards) == 1


def _k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes expands $(NAME) in command/args from the container's env; $$ escapes."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text)


def test_kubernetes_indexed_job() -> None:
    job = yaml.safe_load(JOB.read_text())
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    count = spec["completions"]
    assert 1 <= spec["parallelism"] <= count
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    env_refs = {e["name"]: e["valueFrom"] for e in container["env"]}
    index_var = next(name for name, ref in env_refs.items() if ref.get("fieldRef", {}).get(
        "fieldPath") == "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    assert env_refs["GRADEBOOK_URL"]["secretKeyRef"]["key"] == "url"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    shards = []
    for index in range(count):
        env = {index_var: str(index), "GRADEBOOK_URL": "postgresql://grader@db/grades"}
        argv = [_k8s_expand(a, env) for a in container["command"] + container.get("args", [])]
        args = _grader_args(argv)
        assert args.command == "autograde"
        assert args.db_url == "postgresql://grader@db/grades"  # one shared gradebook
        assert any(Path(args.workdir).is_relative_to(m) for m in mounts)  # on the shared volume
        assert any(Path(args.submissions).is_relative_to(m) for m in mounts)
        assert int(container["resources"]["requests"]["cpu"]) >= args.jobs
        shards.append(Shard.parse(args.shard))
        assert shards[-1] == Shard(index, count)
    _covers_once(shards)


def _fake_course(tmp_path: Path) -> tuple[Path, Path]:
    """COURSE with a .venv/bin/python that writes its arguments, one per line, to a file."""
    course, record = tmp_path / "course", tmp_path / "argv"
    (course / ".venv" / "bin").mkdir(parents=True)
    python = course / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/bash\nprintf "%s\\n" "$0" "$@" > {record}\n')
    python.chmod(0o755)
    return course, record


def _array_ids(text: str) -> list[int]:
    first, last = re.search(r"^#SBATCH --array=(\d+)-(\d+)", text, re.M).groups()
    return list(range(int(first), int(last) + 1))


def _run_sbatch(course: Path, record: Path, task: int, first: int, count: int):
    env = {"PATH": os.environ["PATH"], "SUBMISSIONS": "/shared/hand-ins",
           "WORKDIR": "/shared/work", "GRADEBOOK_URL": "postgresql://grader@db/grades",
           "COURSE": str(course), "SLURM_ARRAY_TASK_ID": str(task),
           "SLURM_ARRAY_TASK_MIN": str(first), "SLURM_ARRAY_TASK_COUNT": str(count),
           "SLURM_CPUS_PER_TASK": "2"}
    proc = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return _grader_args(record.read_text().splitlines())


@pytest.mark.parametrize("offset", [0, 1])  # --array=0-7 as written, or --array=1-8
def test_slurm_array(tmp_path: Path, offset: int) -> None:
    ids = [i + offset for i in _array_ids(SBATCH.read_text())]
    course, record = _fake_course(tmp_path)
    shards = []
    for task in ids:
        args = _run_sbatch(course, record, task, ids[0], len(ids))
        assert args.command == "autograde" and args.workdir == Path("/shared/work")
        assert args.db_url == "postgresql://grader@db/grades" and args.jobs == 2
        shards.append(Shard.parse(args.shard))
    assert shards == [Shard(k, len(ids)) for k in range(len(ids))]
    _covers_once(shards)


def test_slurm_script_refuses_without_settings(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SBATCH)], env={"PATH": os.environ["PATH"]},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "SUBMISSIONS" in proc.stderr
