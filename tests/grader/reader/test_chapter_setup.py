"""grader/reader/chapter_setup.py: the set-up cell of the readers' notebooks (Colab, Binder,
any Jupyter), as publish fills it in (grader.commands.publish.setup_cell). Run here with
`python -S` (no site-packages: resnet_course is not importable, as on a fresh Colab), in a
fake clone of the repository; nothing is cloned or installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.commands import publish

TEMPLATE = Path(publish.READER_DIR) / "chapter_setup.py"
PIP = 'subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing]'


def filled(packages: dict[str, str], url: str = "https://example.invalid/course") -> str:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert "__READER_REPOSITORY__" in text and "PACKAGES: dict[str, str] = {}" in text
    text = (text.replace("__READER_REPOSITORY__", url)
            .replace("__READER_REPOSITORY_NAME__", url.rsplit("/", 1)[-1])
            .replace("PACKAGES: dict[str, str] = {}", f"PACKAGES = {json.dumps(packages)}"))
    assert PIP in text
    return text.replace(PIP, "dict(pip=print('PIP', missing)")  # nothing installed here


def run(code: str, cwd: Path, home: Path) -> tuple[dict, list[str]]:
    code += ("\nimport json, os, sys\nprint(json.dumps({'path0': sys.path[0], 'cwd': os.getcwd(),"
             " 'pythonpath': os.environ.get('PYTHONPATH')}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HOME": str(home)}
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    *printed, last = proc.stdout.splitlines()
    return json.loads(last), printed


def test_inside_a_clone_the_library_comes_from_its_src(tmp_path):
    clone = tmp_path / "clone"
    (clone / "src" / "resnet_course").mkdir(parents=True)
    (clone / "book").mkdir()
    got, printed = run(filled({"json": "json==0"}), cwd=clone / "book", home=tmp_path / "home")
    assert got == {"path0": str(clone / "src"), "cwd": str(clone / "book"),
                   "pythonpath": str(clone / "src")}  # DataLoader workers find it too
    assert printed == []  # json is there: nothing to install


def test_outside_a_clone_it_uses_the_clone_in_home(tmp_path):
    clone = tmp_path / "home" / "course"  # the repository's name, from its URL
    (clone / "src" / "resnet_course").mkdir(parents=True)
    (clone / "book").mkdir()
    (tmp_path / "colab").mkdir()
    got, _ = run(filled({}), cwd=tmp_path / "colab", home=tmp_path / "home")
    assert got["path0"] == str(clone / "src")
    assert got["cwd"] == str(clone / "book")  # the chapters read data/ next to themselves


def test_a_missing_package_is_installed_with_its_pin(tmp_path):
    (tmp_path / "src" / "resnet_course").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    code = filled({"no_such_module_xyz": "no-such-package==1.0", "json": "json==0"})
    _, printed = run(code, cwd=tmp_path / "book", home=tmp_path / "home")
    assert printed == ["PIP ['no-such-package==1.0']"]


@pytest.mark.parametrize("name", ["REPOSITORY", "PACKAGES"])
def test_the_template_names_what_publish_fills_in(name):
    assert f"\n{name}" in TEMPLATE.read_text(encoding="utf-8")
