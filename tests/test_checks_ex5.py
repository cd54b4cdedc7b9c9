"""Unit tests of the hidden-test logic for ex5_gpu_training (no kernel, no nbgrader)."""

import pytest
import torch
from submissions import load_answers
from variants_ex5 import CORRECT, WRONG

from grader.checks import ex5
from grader.checks.common import CheckFailure

CHECKS = {
    "pick_device": ex5.check_pick_device,
    "train_one_epoch": ex5.check_train_one_epoch,
    "evaluate": ex5.check_evaluate,
}
ASSIGNMENT = "ex5_gpu_training"


@pytest.fixture(scope="module")
def solution():
    return load_answers(ASSIGNMENT)


@pytest.mark.parametrize("name", CHECKS)
def test_solution_passes(solution, name):
    for _ in range(3):  # fresh random inputs each time
        CHECKS[name](solution[name])


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


@pytest.mark.parametrize("variant", CORRECT)
def test_correct_variant_passes(variant):
    namespace = load_answers(ASSIGNMENT, CORRECT[variant])
    for name, check in CHECKS.items():
        check(namespace[name])


@pytest.mark.parametrize("name,variant", [(n, v) for n in WRONG for v in WRONG[n]])
def test_wrong_variant_fails(name, variant):
    namespace = load_answers(ASSIGNMENT, {name: WRONG[name][variant]})
    with pytest.raises(CheckFailure) as info:
        CHECKS[name](namespace[name])
    message = str(info.value)
    assert "observed" in message and "expected" in message


def test_every_contract_name_has_variants():
    assert set(WRONG) == set(CHECKS)
    assert all(len(v) >= 3 for v in WRONG.values())
    for name in CHECKS:
        assert sum(name in answers for answers in CORRECT.values()) >= 2, name
