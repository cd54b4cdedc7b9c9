"""Unit tests of the experiment runners behind the chapters on degradation and the identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course import experiments
from resnet_course.data import spirals
from resnet_course.models import ResidualBlock, zero_init_residual_


@pytest.fixture(scope="module")
def data():
    return spirals(n_per_class=20, num_classes=3, seed=1)  # X (60, 2), y (60,)


@pytest.mark.parametrize("depth", [2, 4, 10])
@pytest.mark.parametrize("kind", experiments.KINDS)
def test_make_net_twins_have_depth_linear_layers(kind, depth):
    model = experiments.make_net(kind, depth, in_features=2, width=8, num_classes=3)
    assert len(experiments.linear_layers(model)) == depth
    assert model(torch.zeros(5, 2)).shape == (5, 3)


def test_make_net_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        experiments.make_net("highway", 4, 2, 8, 3)
    with pytest.raises(ValueError, match="even depth"):
        experiments.make_net("residual", 5, 2, 8, 3)


def test_classification_error_counts_misclassified_fraction():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger coordinate
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert experiments.classification_error(model, X, y) == pytest.approx(0.25)


def test_train_full_batch_records_every_step_and_learns(data):
    X, y = data
    torch.manual_seed(0)
    model = experiments.make_net("residual", 4, 2, 16, 3)
    losses, errors = experiments.train_full_batch(model, X, y, num_steps=60, lr=0.05)
    assert len(losses) == len(errors) == 60
    assert losses[-1] < losses[0]
    assert all(0.0 <= e <= 1.0 for e in errors)
    with pytest.raises(ValueError, match="num_steps"):
        experiments.train_full_batch(model, X, y, num_steps=0, lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        experiments.train_full_batch(model, X, y, num_steps=1, lr=0.1, optimizer="lbfgs")


def test_depth_sweep_returns_one_trained_run_per_kind_and_depth(data):
    X, y = data
    runs = experiments.depth_sweep(X, y, depths=(2, 4), width=8, num_steps=3)
    assert [(r.kind, r.depth) for r in runs] == [
        ("plain", 2), ("plain", 4), ("residual", 2), ("residual", 4)
    ]
    for run in runs:
        assert len(run.step_error) == 3
        assert run.final_error == experiments.classification_error(run.model, X, y)


@pytest.mark.parametrize("kind", experiments.KINDS)
def test_block_spans_cover_two_linear_layers_each(kind):
    model = experiments.make_net(kind, 10, 2, 8, 3)
    spans = experiments.block_spans(model)
    assert len(spans) == 4
    for index in range(len(spans)):
        lesioned = experiments.without_block(model, index)
        assert len(experiments.linear_layers(lesioned)) == 8
        assert lesioned(torch.zeros(3, 2)).shape == (3, 3)
        # the lesioned net shares the remaining layers: no copies
        assert lesioned[0] is model[0] and lesioned[-1] is model[-1]
    with pytest.raises(ValueError, match="block index"):
        experiments.without_block(model, 4)


def test_removing_a_zero_initialized_block_changes_nothing(data):
    X, _ = data
    torch.manual_seed(0)
    model = experiments.make_net("residual", 8, 2, 8, 3)  # 3 blocks
    zero_init_residual_(model[3])  # the second block is now exactly the identity
    with torch.no_grad():
        assert torch.equal(model(X), experiments.without_block(model, 1)(X))
        assert not torch.equal(model(X), experiments.without_block(model, 0)(X))


def test_lesion_study_reports_one_error_per_block(data):
    X, y = data
    model = experiments.make_net("plain", 6, 2, 8, 3)
    errors = experiments.lesion_study(model, X, y)
    assert len(errors) == 2 and all(0.0 <= e <= 1.0 for e in errors)


def test_gradient_norms_by_layer_leaves_parameters_and_grads_clean(data):
    X, y = data
    model = experiments.make_net("plain", 6, 2, 8, 3)
    before = [p.detach().clone() for p in model.parameters()]
    norms = experiments.gradient_norms_by_layer(model, X, y)
    assert len(norms) == 6 and all(n >= 0 for n in norms)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    # the first entry is the input-side layer's gradient norm
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    assert norms[0] == pytest.approx(model[0].weight.grad.norm().item())


def test_residual_branch_norms_reads_each_blocks_last_layer():
    model = experiments.make_net("residual", 8, 2, 8, 3)
    zero_init_residual_(model[2])
    norms = experiments.residual_branch_norms(model)
    assert len(norms) == 3 and norms[0] == 0.0 and norms[1] > 0.0


def test_identity_learning_residual_block_ends_closer(data):
    curves = experiments.identity_learning(features=8, num_examples=64, num_steps=40, lr=0.05)
    assert set(curves) == {"plain", "residual"}
    assert len(curves["plain"]) == len(curves["residual"]) == 41  # every step, then the end
    assert curves["residual"][-1] < curves["plain"][-1]


def test_plain_block_is_residual_block_without_shortcut():
    torch.manual_seed(0)
    residual = ResidualBlock(6)
    plain = experiments.PlainBlock(6)
    plain.load_state_dict(residual.state_dict())
    a = torch.randn(4, 6)
    with torch.no_grad():
        branch = residual.linear2(F.relu(residual.linear1(a)))
        assert torch.allclose(plain(a), F.relu(branch))
        assert torch.allclose(residual(a), F.relu(branch + a))


def test_weight_decay_study_same_start_for_each_decay(data):
    X, y = data
    study = experiments.weight_decay_study(X, y, weight_decays=(0.0, 0.1), num_blocks=2,
                                           width=8, num_steps=20)
    assert study[0.0]["init_norms"] == study[0.1]["init_norms"]
    assert all(d < n for d, n in zip(study[0.1]["norms"], study[0.0]["norms"], strict=True))
