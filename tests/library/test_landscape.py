"""Loss along lines and planes through parameter space (resnet_course.landscape)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_course.landscape import (
    filter_normalized_direction,
    interpolation_losses,
    largest_rise,
    loss_surface,
    parameters_of,
    probe_loss,
    top_hessian_eigenvalue,
)
from resnet_course.models import resnet_cifar


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = resnet_cifar(8).eval()
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    return model, X, y


def _train_mode_loss(model, X, y):
    # on a copy: a train-mode pass updates BatchNorm's running statistics
    probe = copy.deepcopy(model).train()
    with torch.no_grad():
        return F.cross_entropy(probe(X), y).item()


def test_filter_normalized_direction(setup):
    model, _, _ = setup
    d = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    assert d.keys() == params.keys()
    for name, p in params.items():
        assert d[name].shape == p.shape
        if p.ndim < 2:
            assert d[name].eq(0).all(), name  # BN scales/shifts and biases do not move
        else:
            dims = tuple(range(1, p.ndim))
            norm = torch.linalg.vector_norm
            torch.testing.assert_close(norm(d[name], dim=dims), norm(p.detach(), dim=dims))
    other = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    assert not torch.equal(d["stem.0.weight"], other["stem.0.weight"])


def test_interpolation_ends_are_the_two_states(setup):
    model, X, y = setup
    start = parameters_of(model)
    torch.manual_seed(5)
    end = parameters_of(resnet_cifar(8))
    losses = interpolation_losses(model, start, end, [0.0, 0.5, 1.0], X, y)
    assert losses.shape == (3,)
    assert losses[0] == pytest.approx(_train_mode_loss(model, X, y), rel=1e-5)
    other = resnet_cifar(8)
    other.load_state_dict(end, strict=False)
    assert losses[2] == pytest.approx(_train_mode_loss(other, X, y), rel=1e-5)
    assert losses[1] not in (losses[0], losses[2])


def test_loss_surface(setup):
    model, X, y = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    d1, d2 = filter_normalized_direction(model, g), filter_normalized_direction(model, g)
    coords = [-1.0, 0.0, 1.0]
    surface = loss_surface(model, d1, d2, coords, X, y)
    assert surface.shape == (3, 3)
    assert surface[1, 1] == pytest.approx(_train_mode_loss(model, X, y), rel=1e-5)
    assert len(np.unique(surface.round(6))) > 1
    # rows follow d2: moving along d1 only (middle row) equals a 1-D line along d1
    centre = parameters_of(model)
    line = interpolation_losses(model, centre, {k: centre[k] + d1[k] for k in centre},
                                coords, X, y)  # fmt: skip
    np.testing.assert_allclose(surface[1], line, rtol=1e-5)
    # the model itself is untouched (a copy is probed)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training


def test_zero_directions_give_a_flat_surface(setup):
    model, X, y = setup
    zero = {k: torch.zeros_like(v) for k, v in parameters_of(model).items()}
    surface = loss_surface(model, zero, zero, [-1.0, 1.0], X, y)
    assert np.ptp(surface) < 1e-6


def test_largest_rise():
    assert largest_rise([3.0, 2.0, 1.0, 0.5]) == 0
    assert largest_rise([3.0, 2.0, 2.5, 1.0]) == pytest.approx(0.5)
    assert largest_rise([1.0, 3.0, 0.0, 2.5]) == pytest.approx(2.5)  # from 0 up to 2.5
    with pytest.raises(ValueError):
        largest_rise([1.0])


def test_probe_loss_is_the_train_mode_loss_and_leaves_the_model_alone(setup):
    model, X, y = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert probe_loss(model, X, y) == pytest.approx(_train_mode_loss(model, X, y), rel=1e-6)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats too


def test_top_hessian_eigenvalue_matches_the_full_hessian():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3))
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])

    def loss_of(theta):
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = theta[i : i + shape.numel()].view(shape)
            i += shape.numel()
        return F.cross_entropy(torch.func.functional_call(model, params, (X,)), y)

    H = torch.autograd.functional.hessian(loss_of, flat)  # (P, P)
    eigenvalues = torch.linalg.eigvalsh(H)
    dominant = eigenvalues[eigenvalues.abs().argmax()].item()
    found = top_hessian_eigenvalue(model, X, y, iterations=500, tol=1e-9,
                                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert found == pytest.approx(dominant, rel=1e-3)
    assert all(p.grad is None for p in model.parameters())  # a copy was differentiated
    with pytest.raises(ValueError, match="iterations"):
        top_hessian_eigenvalue(model, X, y, iterations=0)
