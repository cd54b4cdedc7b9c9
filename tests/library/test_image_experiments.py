"""Unit tests of resnet_course.image_experiments (the runners of the chapters on shortcuts and
image ResNets). One real (tiny) training run, run twice; everything else is fast."""

from __future__ import annotations

import pytest
import torch

from resnet_course import image_experiments as ie
from resnet_course.models import BasicBlock, count_parameters, resnet_cifar
from resnet_course.train import History


@pytest.fixture(autouse=True)
def one_thread():
    # tiny convolutions: one thread is fastest on a shared CPU; restore the setting afterwards
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fake_run(
    depth: int, residual: bool, final_error: float, shortcut: str = "A", seed: int = 0
) -> ie.Run:
    history = History(train_error=[0.9, final_error], val_error=[0.9, final_error])
    return ie.Run(depth, residual, shortcut, num_parameters=1, history=history, seconds=0.0,
                  seed=seed)  # fmt: skip


def pattern(plain: dict[int, float], resnet: dict[int, float]) -> list[ie.Run]:
    return [fake_run(d, False, e) for d, e in plain.items()] + [
        fake_run(d, True, e) for d, e in resnet.items()
    ]


# ----------------------------------------------------------------------------------------------
# check_depth_pattern
# ----------------------------------------------------------------------------------------------
def test_depth_pattern_accepts_figure6_shape_and_reports_numbers():
    runs = pattern({8: 0.00, 20: 0.01, 32: 0.25}, {8: 0.00, 20: 0.004, 32: 0.002})
    numbers = ie.check_depth_pattern(runs, min_gap=0.05, tolerance=0.01)
    assert numbers["shallow"] == 8 and numbers["deep"] == 32
    assert numbers["plain_deep"] == 0.25 and numbers["resnet_deep"] == 0.002


@pytest.mark.parametrize(
    ("plain", "resnet", "message"),
    [
        # the deep plain net is not worse enough: no degradation
        ({8: 0.00, 32: 0.03}, {8: 0.00, 32: 0.00}, "plain-32 training error 0.030 is not"),
        # a deeper ResNet is worse than the shallow one by more than the tolerance
        ({8: 0.00, 32: 0.30}, {8: 0.00, 32: 0.02}, "ResNet-32 training error 0.020 is more"),
        # the middle ResNet is worse, the deepest is fine
        ({8: 0.0, 20: 0.1, 32: 0.3}, {8: 0.0, 20: 0.05, 32: 0.0}, "ResNet-20 training error"),
        # plain errors not increasing with depth
        (
            {8: 0.0, 20: 0.4, 32: 0.3},
            {8: 0.0, 20: 0.0, 32: 0.0},
            "plain-32 training error 0.300 is below",
        ),
    ],
)
def test_depth_pattern_raises_when_the_claim_fails(plain, resnet, message):
    with pytest.raises(RuntimeError, match=message):
        ie.check_depth_pattern(pattern(plain, resnet), min_gap=0.05, tolerance=0.01)


def test_depth_pattern_raises_when_resnet_not_below_plain():
    # both families degrade equally: the ResNet is not better than the plain net of its depth
    runs = pattern({8: 0.0, 32: 0.08}, {8: 0.07, 32: 0.075})
    with pytest.raises(RuntimeError, match="is not at least 0.05 below plain-32"):
        ie.check_depth_pattern(runs, min_gap=0.05, tolerance=0.01)


def test_depth_pattern_uses_the_mean_over_seeds():
    # seed 1's deep plain net alone would fail the 0.05 gap; the mean over seeds passes
    runs = [fake_run(8, False, 0.0, seed=0), fake_run(8, False, 0.02, seed=1),
            fake_run(32, False, 0.30, seed=0), fake_run(32, False, 0.06, seed=1),
            fake_run(8, True, 0.0, seed=0), fake_run(8, True, 0.01, seed=1),
            fake_run(32, True, 0.0, seed=0), fake_run(32, True, 0.02, seed=1)]  # fmt: skip
    numbers = ie.check_depth_pattern(runs, min_gap=0.05, tolerance=0.01)
    assert numbers["plain_deep"] == pytest.approx(0.18) and numbers["seeds"] == 2
    assert (numbers["plain_deep_min"], numbers["plain_deep_max"]) == (0.06, 0.30)
    assert numbers["resnet_deep"] == pytest.approx(0.01)
    runs[2] = fake_run(32, False, 0.04, seed=0)  # mean 0.05: not 0.05 above 0.01
    with pytest.raises(RuntimeError, match="means over seeds"):
        ie.check_depth_pattern(runs, min_gap=0.05, tolerance=0.01)


def test_depth_pattern_rejects_unusable_runs():
    with pytest.raises(ValueError, match="at least two"):
        ie.check_depth_pattern(pattern({8: 0.0}, {8: 0.0, 20: 0.0}))
    with pytest.raises(ValueError, match="same shallowest and deepest"):
        ie.check_depth_pattern(pattern({8: 0.0, 32: 0.3}, {8: 0.0, 20: 0.0}))


# ----------------------------------------------------------------------------------------------
# Tables and shapes
# ----------------------------------------------------------------------------------------------
def test_parameter_rows_match_the_paper_counts():
    # He et al.'s CIFAR ResNets with option A (facts from the design document)
    assert ie.parameter_rows([20, 32]) == [(20, 269_722), (32, 464_154)]


def test_shortcut_parameter_rows_count_only_projections():
    rows = ie.shortcut_parameter_rows(lambda shortcut: resnet_cifar(20, shortcut=shortcut))
    by_option = {option: (total, in_shortcuts) for option, total, in_shortcuts in rows}
    assert by_option["A"] == (269_722, 0)
    assert by_option["B"][0] == 272_474
    for option in ("B", "C"):
        total, in_shortcuts = by_option[option]
        assert in_shortcuts == total - by_option["A"][0] > 0  # the only extra parameters


def test_trace_shapes_of_a_stride2_block_leaves_the_model_unchanged():
    block = BasicBlock(16, 32, stride=2, shortcut="B").train()
    X = torch.randn(2, 16, 8, 8)
    block.eval()
    expected = block(X)
    block.train()
    shapes = ie.trace_shapes(block, X, ["conv1", "bn2", "shortcut"])
    assert shapes == [
        ("input", (2, 16, 8, 8)),
        ("conv1", (2, 32, 4, 4)),
        ("bn2", (2, 32, 4, 4)),
        ("shortcut", (2, 32, 4, 4)),
    ]
    assert block.training  # mode restored
    assert not any(m._forward_hooks for m in block.modules())  # hooks removed
    block.eval()
    torch.testing.assert_close(block(X), expected)  # outputs not altered by the tracing


def test_trace_shapes_rejects_unknown_names():
    with pytest.raises(ValueError, match="no submodules named"):
        ie.trace_shapes(BasicBlock(4, 4), torch.randn(1, 4, 4, 4), ["conv3"])


# ----------------------------------------------------------------------------------------------
# Training runs
# ----------------------------------------------------------------------------------------------
def test_sweeps_build_the_expected_runs(monkeypatch):
    calls = []

    def fake_train(depth, residual=True, shortcut="A", **kwargs):
        calls.append((depth, residual, shortcut, kwargs))
        return fake_run(depth, residual, 0.0, shortcut)

    monkeypatch.setattr(ie, "train_digits_resnet", fake_train)
    runs = ie.depth_sweep([8, 20], num_epochs=2, seed=3)
    assert [run.label for run in runs] == ["plain-8", "plain-20", "ResNet-8", "ResNet-20"]
    assert all(kwargs == {"num_epochs": 2, "seed": 3} for *_, kwargs in calls)
    runs = ie.shortcut_sweep(20, ("A", "C"), lr=0.01)
    assert [(run.depth, run.shortcut) for run in runs] == [(20, "A"), (20, "C")]
    calls.clear()
    runs = ie.depth_sweep([8], seeds=(5, 6), num_epochs=1)
    assert [(c[0], c[1], c[3]["seed"], c[3]["num_epochs"]) for c in calls] == [
        (8, False, 5, 1), (8, False, 6, 1), (8, True, 5, 1), (8, True, 6, 1)]  # fmt: skip
    calls.clear()
    ie.shortcut_sweep(20, ("A", "B"), seeds=(1, 2))
    assert [(c[2], c[3]["seed"]) for c in calls] == [("A", 1), ("A", 2), ("B", 1), ("B", 2)]


def test_train_digits_resnet_is_real_and_reproducible():
    torch.manual_seed(123)  # the run must not depend on the global random state
    first = ie.train_digits_resnet(8, residual=True, num_epochs=1, lr=0.05, seed=0)
    torch.manual_seed(456)
    second = ie.train_digits_resnet(8, residual=True, num_epochs=1, lr=0.05, seed=0)
    assert first.label == "ResNet-8"
    assert first.num_parameters == count_parameters(resnet_cifar(8))
    assert len(first.history.train_error) == len(first.history.val_error) == 1
    # one epoch on the digits beats guessing (90 % error for 10 classes) by far
    assert 0.0 <= first.final_train_error < 0.5
    assert first.history.train_error == second.history.train_error
    assert first.history.step_losses == second.history.step_losses


def test_train_digits_resnet_rejects_zero_epochs():
    with pytest.raises(ValueError, match="num_epochs"):
        ie.train_digits_resnet(8, num_epochs=0)
