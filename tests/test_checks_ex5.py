"""Unit tests of the hidden-test logic for ex5_gpu_training (no kernel, no nbgrader).

The solution, correct and wrong variants are run against every check in tests/test_checks.py;
these are the tests particular to this assignment.
"""

import pytest
import torch
import variants_ex5
from submissions import load_answers

from grader.checks import ex5
from grader.checks.common import CheckFailure

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


def test_averaging_batch_means_is_caught_on_every_draw():
    # it used to pass about 1 draw in 400: BatchNorm undoes the short last batch's scaled
    # inputs, so its loss could land next to the others' average, where the two means agree
    wrong = load_answers(ASSIGNMENT, {"train_one_epoch":
                                      variants_ex5.WRONG["train_one_epoch"]["mean_of_batch_means"]})
    for _ in range(300):
        with pytest.raises(CheckFailure, match="returned loss"):
            ex5.check_train_one_epoch(wrong["train_one_epoch"])


def test_epoch_problems_tell_the_two_means_apart():
    for _ in range(50):
        model, X, y, batch_size, lr = ex5._sized_epoch_problem()
        per_example, losses = ex5.reference_epoch_losses(model, X, y, batch_size, lr)
        k, b, m = len(losses) - 1, batch_size, len(y) % batch_size  # k full batches, m left
        assert k == len(y) // b and m >= 2
        gap = sum(losses) / len(losses) - per_example
        assert abs(gap) > 20 * ex5._fp32_tolerance(per_example)
        # the docstring's formula for the gap (L: the last batch's loss, A: the others' mean)
        L, A = losses[-1], sum(losses[:-1]) / k
        assert gap == pytest.approx(k * (b - m) * (L - A) / ((k + 1) * (k * b + m)), abs=1e-6)
