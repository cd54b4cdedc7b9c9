"""Unit tests of the hidden-test logic for ex5_gpu_training (no kernel, no nbgrader).

The solution, correct and wrong variants are run against every check in tests/test_checks.py;
these are the tests particular to this assignment.
"""

import pytest
import torch
from submissions import load_answers

from grader.checks import ex5

ASSIGNMENT = "ex5_gpu_training"


@pytest.fixture(scope="module")
def solution():
    return load_answers(ASSIGNMENT)



def test_pick_device_check_restores_torch(solution):
    originals = (torch.cuda.is_available, torch.backends.mps.is_available)
    ex5.check_pick_device(solution["pick_device"])
    assert (torch.cuda.is_available, torch.backends.mps.is_available) == originals


def test_host_batches_notice_a_missing_move():
    loader = ex5.host_loader(torch.randn(6, 3), torch.arange(6), batch_size=4)
    ex5.HostBatch.used_unmoved = []
    for X, y in loader:
        assert len(y) == X.shape[0] == X.size(0)  # metadata is fine
        X = (X.float() / 2).to(torch.device("cpu"))  # batch-only work before the move is fine
        torch.nn.functional.linear(X, torch.ones(2, 3))
        assert (y.long().to("cpu") == torch.ones(len(y))).shape == y.shape
    assert ex5.HostBatch.used_unmoved == []
    for X, _ in loader:
        torch.nn.functional.linear(X, torch.ones(2, 3))
    assert ex5.HostBatch.used_unmoved == ["linear", "linear"]
    ex5.HostBatch.used_unmoved = []
