"""The parallel runs keep together what must stay together (tests/xdist_groups.py), checked on
a small suite run with two xdist workers."""

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SUITE = '''
import pytest

@pytest.fixture(scope="module")
def built():
    return 1

@pytest.mark.xdist_group("g")
@pytest.mark.parametrize("x", [1, 2, 3])
def test_marked(x):
    pass

def test_shares_the_module_fixture_a(built):
    pass

def test_shares_the_module_fixture_b(built):
    pass

@pytest.mark.parametrize("x", range(8))
def test_free(x):
    pass
'''


def test_groups_and_module_fixtures_stay_on_one_worker(tmp_path):
    (tmp_path / "conftest.py").write_text("from xdist_groups import pytest_collection_modifyitems"
                                          "  # noqa: F401\n")  # fmt: skip
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    cmd = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v",
           "-p", "no:cacheprovider", "test_suite.py"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    worker = dict(  # test name -> worker that ran it
        (name, gw) for gw, name in re.findall(r"\[(gw\d)\].*PASSED test_suite\.py::(\S+)",
                                               proc.stdout))  # fmt: skip
    assert len(worker) == 13, proc.stdout[-3000:]
    marked = {gw for name, gw in worker.items() if name.startswith("test_marked")}
    shared = {gw for name, gw in worker.items() if name.startswith("test_shares")}
    assert len(marked) == 1 and len(shared) == 1, worker
    assert len(set(worker.values())) == 2, worker  # the free tests did spread out
