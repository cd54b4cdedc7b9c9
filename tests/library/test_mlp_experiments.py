"""Unit tests of mlp_experiments: the runners behind the chapters on degradation and identity."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course import mlp_experiments
from resnet_course.data import spirals
from resnet_course.models import ResidualBlock, zero_init_residual_


@pytest.fixture(scope="module")
def data():
    return spirals(n_per_class=20, num_classes=3, seed=1)  # X (60, 2), y (60,)


@pytest.mark.parametrize("depth", [2, 4, 10])
@pytest.mark.parametrize("kind", mlp_experiments.KINDS)
def test_make_net_twins_have_depth_linear_layers(kind, depth):
    model = mlp_experiments.make_net(kind, depth, in_features=2, width=8, num_classes=3)
    assert len(mlp_experiments.linear_layers(model)) == depth
    assert model(torch.zeros(5, 2)).shape == (5, 3)


def test_make_net_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        mlp_experiments.make_net("highway", 4, 2, 8, 3)
    with pytest.raises(ValueError, match="even depth"):
        mlp_experiments.make_net("residual", 5, 2, 8, 3)


def test_classification_error_counts_misclassified_fraction():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # predicts the larger coordinate
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    assert mlp_experiments.classification_error(model, X, y) == pytest.approx(0.25)


def test_train_full_batch_records_every_step_and_learns(data):
    X, y = data
    torch.manual_seed(0)
    model = mlp_experiments.make_net("residual", 4, 2, 16, 3)
    losses, errors = mlp_experiments.train_full_batch(model, X, y, num_steps=60, lr=0.05)
    assert len(losses) == len(errors) == 60
    assert losses[-1] < losses[0]
    assert all(0.0 <= e <= 1.0 for e in errors)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1"):
        mlp_experiments.train_full_batch(model, X, y, num_steps=0, lr=0.1)
    with pytest.raises(ValueError, match="num_steps"):
        mlp_experiments.train_full_batch(model, X, y, num_steps=True, lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        mlp_experiments.train_full_batch(model, X, y, num_steps=1, lr=0.1, optimizer="lbfgs")


def test_mlp_depth_sweep_returns_one_trained_run_per_kind_and_depth(data):
    X, y = data
    runs = mlp_experiments.mlp_depth_sweep(X, y, depths=(2, 4), width=8, num_steps=3)
    assert [(r.kind, r.depth) for r in runs] == [
        ("plain", 2), ("plain", 4), ("residual", 2), ("residual", 4)
    ]
    for run in runs:
        assert isinstance(run, mlp_experiments.MLPRun)
        assert len(run.step_error) == 3
        assert run.final_error == mlp_experiments.classification_error(run.model, X, y)


def test_names_do_not_clash_with_the_image_experiments():
    """A chapter may import from both modules: no class or function name is defined in both."""
    from resnet_course import image_experiments

    def defined(module) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}

    assert defined(mlp_experiments) & defined(image_experiments) == set()


@pytest.mark.parametrize("kind", mlp_experiments.KINDS)
def test_block_spans_cover_two_linear_layers_each(kind):
    model = mlp_experiments.make_net(kind, 10, 2, 8, 3)
    spans = mlp_experiments.block_spans(model)
    assert len(spans) == 4
    for index in range(len(spans)):
        lesioned = mlp_experiments.without_block(model, index)
        assert len(mlp_experiments.linear_layers(lesioned)) == 8
        assert lesioned(torch.zeros(3, 2)).shape == (3, 3)
        # the lesioned net shares the remaining layers: no copies
        assert lesioned[0] is model[0] and lesioned[-1] is model[-1]
    with pytest.raises(ValueError, match="block index"):
        mlp_experiments.without_block(model, 4)


def test_removing_a_zero_initialized_block_changes_nothing(data):
    X, _ = data
    torch.manual_seed(0)
    model = mlp_experiments.make_net("residual", 8, 2, 8, 3)  # 3 blocks
    zero_init_residual_(model[3])  # the second block is now exactly the identity
    with torch.no_grad():
        assert torch.equal(model(X), mlp_experiments.without_block(model, 1)(X))
        assert not torch.equal(model(X), mlp_experiments.without_block(model, 0)(X))


def test_lesion_study_reports_one_error_per_block(data):
    X, y = data
    model = mlp_experiments.make_net("plain", 6, 2, 8, 3)
    errors = mlp_experiments.lesion_study(model, X, y)
    assert len(errors) == 2 and all(0.0 <= e <= 1.0 for e in errors)


def test_gradient_norms_by_layer_leaves_parameters_and_grads_clean(data):
    X, y = data
    model = mlp_experiments.make_net("plain", 6, 2, 8, 3)
    before = [p.detach().clone() for p in model.parameters()]
    norms = mlp_experiments.gradient_norms_by_layer(model, X, y)
    assert len(norms) == 6 and all(n >= 0 for n in norms)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    # the first entry is the input-side layer's gradient norm
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    assert norms[0] == pytest.approx(model[0].weight.grad.norm().item())


def test_residual_branch_norms_reads_each_blocks_last_layer():
    model = mlp_experiments.make_net("residual", 8, 2, 8, 3)
    zero_init_residual_(model[2])
    norms = mlp_experiments.residual_branch_norms(model)
    assert len(norms) == 3 and norms[0] == 0.0 and norms[1] > 0.0


def test_identity_learning_residual_block_ends_closer(data):
    curves = mlp_experiments.identity_learning(features=8, num_examples=64, num_steps=40, lr=0.05)
    assert set(curves) == {"plain", "residual"}
    assert len(curves["plain"]) == len(curves["residual"]) == 41  # every step, then the end
    assert curves["residual"][-1] < curves["plain"][-1]


def test_plain_block_is_residual_block_without_shortcut():
    torch.manual_seed(0)
    residual = ResidualBlock(6)
    plain = mlp_experiments.PlainBlock(6)
    plain.load_state_dict(residual.state_dict())
    a = torch.randn(4, 6)
    with torch.no_grad():
        branch = residual.linear2(F.relu(residual.linear1(a)))
        assert torch.allclose(plain(a), F.relu(branch))
        assert torch.allclose(residual(a), F.relu(branch + a))


def test_weight_decay_study_same_start_for_each_decay(data):
    X, y = data
    study = mlp_experiments.weight_decay_study(X, y, weight_decays=(0.0, 0.1), num_blocks=2,
                                           width=8, num_steps=20)
    assert study[0.0]["init_norms"] == study[0.1]["init_norms"]
    assert all(d < n for d, n in zip(study[0.1]["norms"], study[0.0]["norms"], strict=True))


@pytest.mark.parametrize("kind", mlp_experiments.KINDS)
def test_branch_ratios_measure_what_each_block_adds(data, kind):
    X, _ = data
    torch.manual_seed(0)
    model = mlp_experiments.make_net(kind, 8, 2, 8, 3)  # 3 blocks
    ratios = mlp_experiments.branch_ratios(model, X)
    assert len(ratios) == 3 and all(r > 0 for r in ratios)
    # by hand for the first block: its input is the output of Linear+ReLU
    with torch.no_grad():
        a = model[1](model[0](X))
        if kind == "residual":
            change = model[2].linear2(F.relu(model[2].linear1(a)))
        else:
            change = model[5](model[4](model[3](model[2](a)))) - a
    assert ratios[0] == pytest.approx((change.norm() / a.norm()).item())


def test_branch_ratio_of_a_zero_initialized_block_is_zero(data):
    X, _ = data
    torch.manual_seed(0)
    model = mlp_experiments.make_net("residual", 8, 2, 8, 3)
    zero_init_residual_(model[3])
    ratios = mlp_experiments.branch_ratios(model, X)
    assert ratios[1] == 0.0 and ratios[0] > 0.0


def test_weight_decay_study_reports_ratios_for_plain_control(data):
    X, y = data
    study = mlp_experiments.weight_decay_study(X, y, weight_decays=(0.0, 0.1), num_blocks=2,
                                           width=8, num_steps=20, kind="plain")
    assert study[0.0]["init_ratios"] == study[0.1]["init_ratios"]
    assert len(study[0.0]["ratios"]) == 2 and study[0.0]["norms"] == []
    assert 0.0 <= study[0.1]["error"] <= 1.0


def test_bn_plain_mlp_has_depth_linear_layers_with_batchnorm_and_he_init():
    torch.manual_seed(0)
    model = mlp_experiments.bn_plain_mlp(2, 256, 5, 3)
    layers = mlp_experiments.linear_layers(model)
    assert len(layers) == 5
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model) == 4
    assert all(layer.bias is None for layer in layers[:-1])
    # He (Kaiming) normal: std sqrt(2 / fan_in) for the width -> width layers
    assert layers[2].weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    assert model(torch.zeros(4, 2)).shape == (4, 3)
    with pytest.raises(ValueError, match="depth"):
        mlp_experiments.bn_plain_mlp(2, 8, 1, 3)


def test_signal_norms_reports_each_hidden_layer_and_leaves_model_clean(data):
    X, y = data
    torch.manual_seed(0)
    model = mlp_experiments.bn_plain_mlp(2, 8, 6, 3)
    before = [p.detach().clone() for p in model.parameters()]
    norms = mlp_experiments.signal_norms(model, X, y)
    assert len(norms["forward"]) == 5 and len(norms["backward"]) == 6
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    # forward: the RMS of the first hidden ReLU's output, by hand
    with torch.no_grad():
        first = model[2](model[1](model[0](X)))
    assert norms["forward"][0] == pytest.approx(first.pow(2).mean().sqrt().item(), rel=1e-5)
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    assert norms["backward"][-1] == pytest.approx(model[-1].weight.grad.norm().item(), rel=1e-5)


def test_bn_depth_sweep_one_run_per_depth_and_seed(data):
    X, y = data
    runs = mlp_experiments.bn_depth_sweep(X, y, depths=(2, 4), seeds=(0, 1), width=8, num_steps=3)
    assert [(r.depth, len(r.step_error)) for r in runs] == [(2, 3)] * 2 + [(4, 3)] * 2
    assert all(r.kind == "plain-bn" and 0.0 <= r.final_error <= 1.0 for r in runs)
    # different seeds give different nets; the same seed the same net
    again = mlp_experiments.bn_depth_sweep(X, y, depths=(2,), seeds=(0,), width=8, num_steps=3)
    assert again[0].step_loss == runs[0].step_loss != runs[1].step_loss


def test_plot_error_spread_vs_depth_draws_mean_and_seeds():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resnet_course.plotting import plot_error_spread_vs_depth

    fig, ax = plt.subplots()
    plot_error_spread_vs_depth([8, 16], {"plain": [[0.1, 0.3], [0.5, 0.5]]}, ax=ax)
    mean_line = ax.get_lines()[0]
    assert list(mean_line.get_ydata()) == pytest.approx([20.0, 50.0])
    with pytest.raises(ValueError, match="must match"):
        plot_error_spread_vs_depth([8], {"plain": [[0.1], [0.2]]}, ax=ax)
    plt.close(fig)


def test_residual_depth_study_reports_train_and_held_out_error_per_seed(data):
    X, y = data
    X_val, y_val = spirals(n_per_class=10, num_classes=3, seed=2)
    study = mlp_experiments.residual_depth_study(X, y, X_val, y_val, depths=(2, 4), seeds=(0, 1),
                                             num_steps=3)
    assert set(study) == {2, 4}
    for result in study.values():
        assert len(result["train"]) == len(result["val"]) == 2
        assert all(0.0 <= e <= 1.0 for e in result["train"] + result["val"])


def test_mlp_depth_sweep_runs_every_seed_and_records_it(data):
    X, y = data
    runs = mlp_experiments.mlp_depth_sweep(X, y, depths=(2,), kinds=("plain",), width=8,
                                           num_steps=2, seeds=(3, 4))  # fmt: skip
    assert [(r.seed, r.lr) for r in runs] == [(3, 0.01), (4, 0.01)]
    assert runs[0].step_loss != runs[1].step_loss  # different initial draws
    again = mlp_experiments.mlp_depth_sweep(X, y, depths=(2,), kinds=("plain",), width=8,
                                            num_steps=2, seeds=(4,))  # fmt: skip
    assert again[0].step_loss == runs[1].step_loss  # the seed alone decides the run


@pytest.mark.parametrize("depth", [2, 4, 8])
def test_bn_residual_mlp_is_the_plain_bn_nets_twin(depth):
    torch.manual_seed(0)
    plain = mlp_experiments.bn_plain_mlp(2, 8, depth, 3)
    twin = mlp_experiments.bn_residual_mlp(2, 8, depth, 3)
    # the same Linear layers (shapes, no bias but the last) and BatchNorm layers
    shapes = [(m.weight.shape, m.bias is None) for m in mlp_experiments.linear_layers(plain)]
    assert shapes == [(m.weight.shape, m.bias is None)
                      for m in mlp_experiments.linear_layers(twin)]  # fmt: skip
    count_bn = lambda m: sum(isinstance(x, nn.BatchNorm1d) for x in m.modules())  # noqa: E731
    assert count_bn(plain) == count_bn(twin) == depth - 1
    blocks = [m for m in twin if isinstance(m, mlp_experiments.BNResidualBlock)]
    assert len(blocks) == (depth - 2) // 2
    assert twin(torch.randn(5, 2)).shape == (5, 3)
    with pytest.raises(ValueError, match="even depth"):
        mlp_experiments.bn_residual_mlp(2, 8, depth + 1, 3)


def test_bn_residual_block_adds_its_input_before_the_last_relu():
    torch.manual_seed(0)
    block = mlp_experiments.BNResidualBlock(4).eval()  # running stats: mean 0, var 1
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()  # branch silenced
        a = torch.relu(torch.randn(6, 4))
        assert torch.equal(block(a), a)  # the identity, as in the chapter's argument
        block.bn2.bias.fill_(-10.0)  # branch far negative: the ReLU after the sum cuts it
        assert torch.equal(block(a), torch.zeros_like(a))


def test_bn_depth_sweep_trains_the_residual_twin_with_its_learning_rate(data):
    X, y = data
    runs = mlp_experiments.bn_depth_sweep(X, y, depths=(4,), seeds=(0,), width=8, num_steps=2,
                                          lr=0.003, kind="residual-bn")  # fmt: skip
    assert runs[0].kind == "residual-bn" and runs[0].lr == 0.003
    assert any(isinstance(m, mlp_experiments.BNResidualBlock) for m in runs[0].model.modules())
    with pytest.raises(ValueError, match="kind"):
        mlp_experiments.bn_depth_sweep(X, y, depths=(4,), seeds=(0,), num_steps=1, kind="x")
