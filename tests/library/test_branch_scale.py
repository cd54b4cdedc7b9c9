"""resnet_course.branch_scale: the stacks of the chapter "Small branches" and their measurements."""

import math

import pytest
import torch
from torch import nn

from resnet_course import branch_scale
from resnet_course.branch_scale import (
    KINDS,
    ScaledBlock,
    branch_to_trunk_ratios,
    fit_power_law,
    make_kind,
    plain_gradient_growth,
    scaled_residual_mlp,
    train_until_diverged,
    twin_branch_ratio,
)
from resnet_course.mlp_experiments import make_net
from resnet_course.train import set_seed


def blocks(model):
    return [m for m in model if isinstance(m, ScaledBlock)]


def test_alpha_settings():
    fixed = scaled_residual_mlp(2, 8, 16, 3, alpha="1/sqrt(L)")
    assert all(b.alpha.item() == pytest.approx(0.25) for b in blocks(fixed))
    learnable = scaled_residual_mlp(2, 8, 4, 3, alpha="learnable")
    assert all(isinstance(b.alpha, nn.Parameter) and b.alpha.item() == 0 for b in blocks(learnable))
    assert not any(isinstance(b.alpha, nn.Parameter) for b in blocks(fixed))


def test_learnable_zero_alpha_starts_as_identity():
    model = scaled_residual_mlp(2, 8, 5, 3, alpha="learnable")
    x = torch.randn(10, 8)
    for block in blocks(model):
        torch.testing.assert_close(block(x), x)


def test_forward_shapes_and_block_count():
    for kind in KINDS:
        model = make_kind(kind, 2, 16, 6, 3)
        assert len(blocks(model)) == 6
        assert model(torch.randn(7, 2)).shape == (7, 3)
    assert scaled_residual_mlp(2, 8, 0, 3)(torch.randn(4, 2)).shape == (4, 3)


def test_he_init_draws_variance_two_over_fan_in():
    set_seed(0)
    model = scaled_residual_mlp(2, 256, 2, 3, init="he")
    w = blocks(model)[0].linear1.weight
    assert w.var().item() == pytest.approx(2 / 256, rel=0.1)
    assert blocks(model)[0].linear1.bias.abs().max().item() == 0


@pytest.mark.parametrize("bad", [dict(alpha="big"), dict(alpha=math.inf), dict(init="xavier"),
                                 dict(alpha=True)])
def test_bad_arguments_are_refused(bad):
    with pytest.raises(ValueError):
        scaled_residual_mlp(2, 8, 3, 3, **bad)
    with pytest.raises(ValueError, match="kind"):
        make_kind("no such kind", 2, 8, 3, 3)


def test_train_until_diverged_stops_on_nan():
    model = nn.Sequential(nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    assert train_until_diverged(model, torch.randn(8, 2), torch.zeros(8, dtype=torch.long), 5, 0.1)
    healthy = nn.Sequential(nn.Linear(2, 3))
    assert not train_until_diverged(healthy, torch.randn(8, 2), torch.zeros(8, dtype=torch.long),
                                    5, 0.1)


def test_ratios_fall_with_depth_under_batchnorm():
    set_seed(0)
    model = make_kind("He, BatchNorm pre-activation", 2, 64, 32, 3)
    ratios = branch_to_trunk_ratios(model, torch.randn(256, 2))
    assert len(ratios) == 32
    p, _ = fit_power_law(range(1, 33), ratios)
    assert -0.8 < p < -0.3


def test_fit_power_law_recovers_exponent():
    ks = [1, 2, 4, 8, 16]
    p, c = fit_power_law(ks, [3 * k**-0.5 for k in ks])
    assert p == pytest.approx(-0.5) and c == pytest.approx(3)


def test_twin_branch_ratio_is_smaller_under_default_init():
    X = torch.randn(128, 2)
    set_seed(0)
    default = twin_branch_ratio(make_net("residual", 16, 2, 32, 3), X)
    set_seed(0)
    he = twin_branch_ratio(branch_scale.he_init_(make_net("residual", 16, 2, 32, 3)), X)
    assert default < he
    with pytest.raises(ValueError, match="no residual block"):
        twin_branch_ratio(nn.Sequential(nn.Linear(2, 3)), X)


def test_plain_gradient_growth_is_above_one():
    X, y = torch.randn(200, 2), torch.randint(0, 3, (200,))
    norms, factor = plain_gradient_growth(X, y, depth=10, width=64, seed=0)
    assert len(norms) == 10 and 1.05 < factor < 1.6
