"""Unit tests of the hidden-test logic for ex5_gpu_training (no kernel, no nbgrader).

The solution and every correct variant of tests/variants_ex5.py pass every check; every wrong
variant fails the check of its own name with an observed/expected message
(tests/variant_checks.py); the tests after those are particular to this assignment.
"""

import pytest
import torch
import variants_ex5
from submissions import load_answers
from variant_checks import contract_tests

from grader.checks import ex5
from grader.checks.common import CheckFailure

ASSIGNMENT = "ex5_gpu_training"
CHECKS = {
    "pick_device": ex5.check_pick_device,
    "train_one_epoch": ex5.check_train_one_epoch,
    "evaluate": ex5.check_evaluate,
    "train_digits": ex5.check_train_digits,
}

(test_solution_passes, test_solution_passes_on_more_random_draws,
 test_solution_passes_visible_tests, test_correct_variant_passes, test_wrong_variant_fails,
 test_wrong_variant_fails_on_more_random_draws,
 test_every_contract_name_has_variants) = contract_tests(ASSIGNMENT, variants_ex5, CHECKS)


@pytest.fixture(scope="module")
def solution():
    return load_answers(ASSIGNMENT)


def test_pick_device_check_restores_torch(solution):
    originals = (torch.cuda.is_available, torch.backends.mps.is_available)
    ex5.check_pick_device(solution["pick_device"])
    assert (torch.cuda.is_available, torch.backends.mps.is_available) == originals


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


# train_digits won by training elsewhere (issue 20): see variants_ex5 (trains_a_copy_elsewhere,
# learns_public_digits_uncounted)
ELSEWHERE = variants_ex5.WRONG["train_digits"]["trains_a_copy_elsewhere"]
UNCOUNTED = variants_ex5.WRONG["train_digits"]["learns_public_digits_uncounted"]


def _train_digits(source: str):
    namespace = {"torch": torch, "F": torch.nn.functional, "nn": torch.nn,
                 "DataLoader": torch.utils.data.DataLoader,
                 "TensorDataset": torch.utils.data.TensorDataset}
    exec(compile(source, "<attack>", "exec"), namespace)
    return namespace["train_digits"]


def test_training_a_hook_free_copy_over_the_budget_is_counted():
    with pytest.raises(CheckFailure, match="within the budget") as failure:
        ex5.check_train_digits(_train_digits(ELSEWHERE))
    assert "600 forward passes" in str(failure.value) and "600 optimizer steps" in str(
        failure.value)


def test_training_on_the_public_digits_does_not_reach_the_graded_ones():
    # uncounted work on the public digits: within the budget as counted, below the target on
    # the digits as the grader draws them (on the raw held-out digits it reaches about 0.98)
    with pytest.raises(CheckFailure, match="held-out digits") as failure:
        ex5.check_train_digits(_train_digits(UNCOUNTED))
    assert "after 0 steps" in str(failure.value)


def test_a_secret_view_is_never_the_identity_and_keeps_digits_apart():
    X, _ = ex5._digits()
    for seed in range(40):
        view = ex5.secret_view(torch.Generator().manual_seed(seed))
        assert (view(X) - X).abs().mean() > 0.05
        assert view(X).shape == X.shape


# An instrument the answer clears or rewrites (issue 21): batches not moved, and the record of
# that cleared (or replaced) at the end, used to pass as "every batch moved".
_NOT_MOVED = variants_ex5.WRONG["train_one_epoch"]["batches_not_moved"]


@pytest.mark.parametrize("erase", [
    "type(X).used_unmoved.clear()",
    "type(X).used_unmoved = []",
    "del type(X).used_unmoved[:]",
    "type(X).__torch_function__ = classmethod(lambda cls, func, types, args=(), kwargs=None: "
    "torch.Tensor.__torch_function__.__func__(cls, func, types, args, kwargs or {}))",
], ids=["clear", "replace", "delete", "rebind"])
def test_an_answer_that_erases_the_record_fails_like_a_wrong_one(erase):
    source = _NOT_MOVED.replace("    return total_loss / num_examples",
                                f"    {erase}\n    return total_loss / num_examples")
    assert source != _NOT_MOVED
    saved = ex5.HostBatch.__dict__["__torch_function__"]
    try:
        with pytest.raises(CheckFailure, match="cleared or rewritten"):
            ex5.check_train_one_epoch(_namespace(source)["train_one_epoch"])
    finally:
        ex5.HostBatch.__torch_function__ = saved


def _namespace(source: str) -> dict:
    namespace = {"torch": torch, "F": torch.nn.functional, "nn": torch.nn}
    exec(compile(source, "<answer>", "exec"), namespace)
    return namespace


