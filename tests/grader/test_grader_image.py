"""The grading image (deploy/image) and the Kubernetes recipe that runs it agree, and it grades.

Always (fast, no container runtime): the recipe names the image build.sh makes, runs the venv
and course folder the Containerfile lays out, and gives the pod the securityContext the sandbox
needs; the Containerfile installs requirements.txt (torch's pin, as its CPU wheel) and the
Debian packages grader.isolation.sandbox calls; build.sh parses and refuses unknown arguments.

Opt-in, GRADER_IMAGE_TEST=1 (root, podman, mmdebstrap, network to Debian's archive and PyPI):
deploy/image/build.sh builds the image (the first build takes about 18 min: mmdebstrap and
pip installing ~3 GB; later ones reuse podman's layer cache and take about 1 min when only the
course's files changed), then the toy class of tests/grader/test_grader_cli.py is graded inside a
container started as the recipe's pod is: its command, working folder and capabilities, /data a
volume, no network. Every submission must get test_grader_cli's expected scores and flags, with
the sandbox on (autograde refuses without it); and without the recipe's added capabilities the
same command must exit 2 saying the sandbox is missing. Not part of `make test`: it downloads
gigabytes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_toy, read_csv
from test_deploy_recipes import _grader_args, _k8s_expand
from test_grader_cli import EXPECTED, _write_submissions

from grader.commands.cli import main

IMAGE_DIR = REPO / "deploy" / "image"
CONTAINERFILE = IMAGE_DIR / "Containerfile"
BUILD = IMAGE_DIR / "build.sh"
JOB = REPO / "deploy" / "kubernetes" / "autograde-job.yaml"


def _container() -> dict:
    (container,) = yaml.safe_load(JOB.read_text())["spec"]["template"]["spec"]["containers"]
    return container


def _script_default(name: str) -> str:
    """VAR's default in build.sh (`VAR=${VAR:-default}`)."""
    match = re.search(rf"^{name}=\$\{{{name}:-([^}}]+)\}}", BUILD.read_text(), re.M)
    assert match, f"build.sh sets no default {name}"
    return match[1]


def _name_and_tag(image: str) -> tuple[str, str]:
    """'registry.example.edu/resnet-course-grader:latest' -> ('resnet-course-grader', 'latest')."""
    path, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return path.rsplit("/", 1)[-1], tag or "latest"


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


# --------------------------------------------------------------------------- always


def test_recipe_names_the_image_build_sh_makes() -> None:
    container = _container()
    assert _name_and_tag(container["image"]) == _name_and_tag(_script_default("IMAGE"))
    assert "registry.example.edu" in container["image"]  # a placeholder the header explains


def test_recipe_runs_the_images_venv_and_course() -> None:
    text = CONTAINERFILE.read_text()
    container = _container()
    workdir = re.search(r"^WORKDIR (\S+)", text, re.M)[1]
    assert container["workingDir"] == workdir == "/course"
    assert "python3 -m venv .venv" in text  # -> /course/.venv
    argv = [_k8s_expand(a, {"SHARD_INDEX": "0", "GRADEBOOK_URL": "sqlite:////data/g.db"})
            for a in container["command"]]
    assert argv[0] == f"{workdir}/.venv/bin/python"
    assert _grader_args(argv).command == "autograde"
    assert "RUN mkdir -p /data" in text  # the recipe's volume mount point


def test_containerfile_installs_the_pins_and_the_sandbox_tools() -> None:
    text = CONTAINERFILE.read_text()
    # the pinned environment: requirements.txt itself, torch from the +cpu wheel build.sh stages
    assert "COPY course/requirements.txt" in text
    assert "grep -v '^soupsieve==' requirements.txt" in text  # all but soupsieve, then it:
    assert "\"$(grep '^soupsieve==' requirements.txt)\"" in text  # at its pin, on Python 3.11.2
    assert "--find-links /tmp/wheels" in text and "COPY wheels/ /tmp/wheels/" in text
    script = BUILD.read_text()
    assert "torch==$torch_pin+cpu" in script
    assert "cp311" in script and "bookworm" in _script_default("SUITE")  # python3 3.11
    torch = _requirements()["torch"]
    pin = subprocess.run(["sed", "-n", r"s/^torch==\([^ ;#]*\).*/\1/p",
                          str(REPO / "requirements.txt")], capture_output=True, text=True)
    assert pin.stdout.strip() == torch  # build.sh's extraction of the pin
    # the tools grader.isolation.sandbox.sandbox_available() looks for as root: bwrap, prlimit,
    # setpriv
    apt = re.search(r"apt-get install ([^&]+)", text.replace("\\\n", " "))[1].split()
    assert {"python3", "python3-venv", "bubblewrap", "util-linux"} <= set(apt)
    # the base is the one build.sh imports from mmdebstrap
    assert re.search(r"^ARG BASE=(\S+)", text, re.M)[1] == \
        _script_default("BASE").replace("$SUITE", _script_default("SUITE"))
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)


def test_recipe_gives_the_sandbox_what_it_needs() -> None:
    context = _container()["securityContext"]
    assert context.get("runAsUser", 0) == 0  # root: sandbox uids, rlimits per uid
    # namespaces and mounts; loopback in the sandbox's network namespace
    assert sorted(context["capabilities"]["add"]) == ["NET_ADMIN", "SYS_ADMIN"]
    assert context.get("privileged") is not True
    assert "allowPrivilegeEscalation" not in context  # false + SYS_ADMIN: rejected by k8s
    assert context["appArmorProfile"]["type"] == "Unconfined"
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    assert context["procMount"] == "Unmasked"  # a new /proc inside a user namespace
    pod = yaml.safe_load(JOB.read_text())["spec"]["template"]["spec"]
    assert pod["hostUsers"] is False  # which procMount: Unmasked requires


def test_build_script_parses_and_refuses_unknown_arguments() -> None:
    assert subprocess.run(["bash", "-n", str(BUILD)]).returncode == 0
    assert os.access(BUILD, os.X_OK)
    usage = subprocess.run(["bash", str(BUILD), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "mmdebstrap" in usage.stdout
    bad = subprocess.run(["bash", str(BUILD), "--frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--frobnicate" in bad.stderr


# --------------------------------------------------------------------------- opt-in

opt_in = pytest.mark.skipif(os.environ.get("GRADER_IMAGE_TEST") != "1",
                            reason="set GRADER_IMAGE_TEST=1 to build the image and grade in it")


def _podman_flags(container: dict, with_capabilities: bool = True) -> list[str]:
    """podman run's equivalent of the pod: its user, capabilities, seccomp and AppArmor."""
    context = container["securityContext"]
    flags = ["--user", str(context.get("runAsUser", 0)), "--workdir", container["workingDir"],
             "--network", "none"]  # the pod needs none but its database: sqlite here
    if with_capabilities:
        flags += [f"--cap-add={cap}" for cap in context["capabilities"]["add"]]
    if context.get("procMount") == "Unmasked":  # no masked or read-only paths in /proc
        flags += ["--security-opt", "unmask=ALL"]
    if context["appArmorProfile"]["type"] == "Unconfined":
        flags += ["--security-opt", "apparmor=unconfined"]
    assert context["seccompProfile"]["type"] == "RuntimeDefault"  # podman's default profile
    return flags


def _recipe_command(container: dict, data: Path) -> list[str]:
    """The pod's command as Kubernetes expands it, as one shard of one, on the toy course."""
    env = {"SHARD_INDEX": "0", "GRADEBOOK_URL": "sqlite:////data/gradebook.db"}
    argv = [_k8s_expand(a, env) for a in container["command"]]
    shard = argv.index("--shard")
    argv[shard + 1] = "0/1"
    return argv + ["--root", "/data/course", "--cell-timeout", "6"]


@pytest.fixture(scope="module")
def image() -> str:
    for tool in ("podman", "mmdebstrap"):
        assert shutil.which(tool), f"GRADER_IMAGE_TEST=1 needs {tool} (apt-get install {tool})"
    name = "resnet-course-grader:image-test"
    proc = subprocess.run(["bash", str(BUILD)], env={**os.environ, "IMAGE": name},
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return name


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """/data of the pod: the toy course (released here) and its nine hand-ins."""
    data = tmp_path_factory.mktemp("data")
    copy_toy(data / "course")
    assert main(["release", "--root", str(data / "course")]) == 0
    _write_submissions(data / "course", data / "submissions")
    return data


def _podman(*args: str) -> list[str]:
    """podman run with the host's PODMAN_FLAGS (see build.sh: runtime and ulimit work-arounds)."""
    return ["podman", "run", "--rm", *os.environ.get("PODMAN_FLAGS", "").split(), *args]


def _podman_run(image: str, data: Path, flags: list[str], argv: list[str]):
    return subprocess.run(_podman("-v", f"{data}:/data", *flags, image, *argv),
                          capture_output=True, text=True, timeout=1800)


@opt_in
def test_image_environment_is_the_pinned_one(image: str) -> None:
    proc = subprocess.run(_podman("--network", "none", image,
                                  "/course/.venv/bin/python", "-m", "pip", "freeze"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    frozen = {}
    for line in proc.stdout.splitlines():
        if "==" in line:
            name, version = line.split("==")
            frozen[re.sub(r"[-_.]+", "-", name).lower()] = version
    for name, version in _requirements().items():
        expected = f"{version}+cpu" if name == "torch" else version
        assert frozen.get(name) == expected, (name, frozen.get(name), expected)
    assert not any(name.startswith("nvidia-") for name in frozen)  # the CPU wheel: no CUDA


@opt_in
def test_image_grades_the_toy_class_in_its_sandbox(image: str, data: Path) -> None:
    container = _container()
    argv = _recipe_command(container, data)
    # without the added capabilities bubblewrap cannot start: autograde refuses, saying why
    refused = _podman_run(image, data, _podman_flags(container, with_capabilities=False), argv)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "sandbox" in refused.stderr.lower(), refused.stderr
    assert not (data / "work" / "grades_by_cell.csv").exists()
    # as the pod runs: the shard, then export (as after all shards of a Job)
    graded = _podman_run(image, data, _podman_flags(container), argv)
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    assert "--no-sandbox" not in argv
    export = ["/course/.venv/bin/python", "-m", "grader", "export", "--workdir", "/data/work",
              "--root", "/data/course"]
    exported = _podman_run(image, data, _podman_flags(container), export)
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]
    rows = read_csv(data / "work" / "grades_by_cell.csv")
    totals = {row["student_id"]: row for row in read_csv(data / "work" / "grades.csv")}
    assert set(totals) == set(EXPECTED)
    for student, (cells, flags) in EXPECTED.items():
        got = {r["grade_id"]: float(r["score"]) for r in rows if r["student_id"] == student}
        assert got == {**cells, "explain": 0}, student  # explain: graded by hand, later
        assert totals[student]["flags"] == flags, student
        assert (data / "work" / "feedback" / student / "toy" / "toy.html").is_file() or \
            flags in {"missing-notebook", "invalid-notebook"}
