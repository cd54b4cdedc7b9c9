"""grader/commands/environment.py: the published trees' pinned package sets, cut from a
requirements file by walking the installed packages' metadata from the distributions that some
code imports. Publish's starter environment as a whole is in test_publish.py."""

from importlib import metadata

import pytest
from packaging.utils import canonicalize_name

from grader.commands.environment import (
    imported_distributions,
    imported_modules,
    pinned_closure,
    read_pins,
)


def test_read_pins(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# the course\n-r other.txt\nTorch==2.1.0  # cpu\n\nJupyter_Core==5.0\n")
    assert read_pins(path) == {"torch": "Torch==2.1.0", "jupyter-core": "Jupyter_Core==5.0"}


def test_imported_modules():
    sources = ["import torch.nn as nn\nfrom numpy.linalg import norm\nfrom . import local\n",
               "%matplotlib inline\nimport matplotlib.pyplot as plt\nx = (",  # magics: by line
               "from resnet_course.models import plain_mlp"]
    assert imported_modules(sources) == {"torch", "numpy", "matplotlib", "resnet_course"}


def test_imported_distributions_leave_out_stdlib_and_local_modules():
    code = ["import os, json\nimport packaging.version\nimport resnet_course\n"]
    assert imported_distributions(code, local=["resnet_course"]) == {"packaging"}
    with pytest.raises(LookupError, match="'no_such_module_xyz' comes from no installed"):
        imported_distributions(["import no_such_module_xyz"])


@pytest.fixture
def freeze(tmp_path):
    """A requirements file pinning every installed distribution at its installed version."""
    lines = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()})
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pinned_closure_follows_dependencies(freeze):
    closure = pinned_closure(freeze, ["pytest"])
    names = {canonicalize_name(line.split("==")[0]) for line in closure}
    assert {"pytest", "pluggy", "iniconfig", "packaging"} <= names
    assert "torch" not in names and "nbgrader" not in names
    assert len(closure) == len(names)  # one line per distribution
    assert all(line in freeze.read_text().splitlines() for line in closure)


def test_an_unpinned_root_is_refused(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("packaging==24.0\n")
    assert pinned_closure(path, ["packaging"]) == ["packaging==24.0"]
    with pytest.raises(LookupError, match="pytest is needed but not pinned"):
        pinned_closure(path, ["pytest"])
