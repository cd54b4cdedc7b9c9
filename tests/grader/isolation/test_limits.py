"""grader/isolation/limits.py: the resource limits of one sandboxed notebook, their derived
defaults and the checks on their values. Limits enforced in a running sandbox are in
test_sandbox.py and test_subject_limits.py."""

import pytest

from grader.isolation.limits import GIB, MIB, Limits


def test_defaults():
    limits = Limits()
    assert limits.memory_bytes == 4 * GIB
    # /tmp, /dev/shm and the scratch folder: a twelfth of memory each, a quarter together
    assert limits.tmpfs_bytes == limits.disk_bytes == 4 * GIB // 12
    assert 2 * limits.tmpfs_bytes + limits.disk_bytes <= limits.memory_bytes // 4
    assert limits.cpu_seconds == 2 * limits.notebook_timeout + 60


def test_sizes_follow_memory_unless_given():
    assert Limits(memory_bytes=GIB).tmpfs_bytes == GIB // 12
    assert Limits(memory_bytes=GIB, disk_bytes=64 * MIB).disk_bytes == 64 * MIB


def test_rlimit_args():
    limits = Limits(memory_bytes=GIB, max_processes=64, notebook_timeout=100,
                    file_size_bytes=2 * MIB, open_files=128)
    assert limits.rlimit_args() == [f"--as={GIB}", "--nproc=64", "--cpu=260",
                                    f"--fsize={2 * MIB}", "--nofile=128", "--core=0"]


@pytest.mark.parametrize("kwargs", [
    {"cell_timeout": 0}, {"notebook_timeout": -1}, {"memory_bytes": MIB},
    {"max_processes": 15}, {"open_files": 10}, {"notebook_bytes": 9_999},
    {"cell_timeout": 1.5}, {"cell_timeout": True}, {"cell_timeout": "60"},
    {"tmpfs_bytes": MIB - 1},
])
def test_values_out_of_range_are_refused(kwargs):
    with pytest.raises(ValueError, match=f"Limits.{next(iter(kwargs))} must be an integer"):
        Limits(**kwargs)


def test_writable_space_must_fit_a_quarter_of_memory():
    with pytest.raises(ValueError, match="quarter of memory_bytes"):
        Limits(memory_bytes=GIB, tmpfs_bytes=100 * MIB, disk_bytes=100 * MIB)
    Limits(memory_bytes=GIB, tmpfs_bytes=64 * MIB, disk_bytes=128 * MIB)  # 256 MiB: fits


def test_frozen():
    with pytest.raises(AttributeError):
        Limits().cell_timeout = 5
