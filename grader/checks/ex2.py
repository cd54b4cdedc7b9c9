"""Hidden tests for ex2_identity: ResidualBlock, zero_init_residual_, residual_mlp.

The reference forward passes below are computed from the student's own parameters (after fresh
random values are written into a copy), so any correct structure passes, whatever its spelling.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks.common import (
    build_module,
    count_params,
    expect,
    expect_close,
    expect_own_implementation,
    expect_value_error,
    fail,
    fresh_seed,
    linear_layers,
    quiet,
    randint,
    randomize_,
)


def _reference_block(a: torch.Tensor, linear1: nn.Linear, linear2: nn.Linear) -> torch.Tensor:
    """a[l+2] = relu(W2 relu(W1 a + b1) + b2 + a): the skip joins BEFORE the last ReLU."""
    h = F.relu(F.linear(a, linear1.weight, linear1.bias))
    return F.relu(F.linear(h, linear2.weight, linear2.bias) + a)


def _expect_square_linear(layer: object, name: str, features: int) -> None:
    expect(isinstance(layer, nn.Linear), f"ResidualBlock({features}).{name} must be an nn.Linear",
           type(layer).__name__, "nn.Linear")
    shape = (layer.in_features, layer.out_features, layer.bias is not None)
    expect(shape == (features, features, True),
           f"ResidualBlock({features}).{name}: (in_features, out_features, has bias)", shape,
           (features, features, True))


def check_residual_block(ResidualBlock) -> None:
    expect_own_implementation(ResidualBlock, "ResidualBlock")
    fresh_seed()
    for features in (randint(2, 5), randint(8, 24)):
        block = build_module(ResidualBlock, "ResidualBlock", "ResidualBlock", features)
        for name in ("linear1", "linear2"):
            _expect_square_linear(getattr(block, name, None), name, features)
        expected_params = 2 * (features * features + features)
        expect(count_params(block) == expected_params,
               f"ResidualBlock({features}): number of parameters (two Linear layers, nothing else)",
               count_params(block), expected_params)
        block = randomize_(copy.deepcopy(block))
        a = torch.randn(randint(3, 9), features)
        a_before = a.clone()
        with quiet():
            out = block(a)
        expect(torch.equal(a, a_before), "ResidualBlock.forward must not modify its input in place",
               "the input tensor changed", "the input unchanged")
        with torch.no_grad():
            expected = _reference_block(a_before, block.linear1, block.linear2)
        expect_close(out, expected,
                     f"ResidualBlock({features}) output: relu(linear2(relu(linear1(a))) + a)")
        _expect_gradients_flow(block, a_before)


def _expect_gradients_flow(block: nn.Module, a: torch.Tensor) -> None:
    """Gradients must reach the input as they do in the reference (no detach, no no_grad).

    Compared with the reference's own input gradient rather than "nonzero": for some inputs
    every output sits at ReLU's zero and the correct gradient is exactly zero.
    """
    a_student = a.clone().requires_grad_(True)
    with quiet():
        block(a_student).sum().backward()
    if a_student.grad is None:
        fail("gradients must flow back to the block's input", "no gradient at the input",
             "the gradient of relu(linear2(relu(linear1(a))) + a) with respect to a")
    a_reference = a.clone().requires_grad_(True)
    _reference_block(a_reference, block.linear1, block.linear2).sum().backward()
    expect_close(a_student.grad, a_reference.grad,
                 "gradient of sum(ResidualBlock(a)) with respect to its input a")


class _ReferenceBlock(nn.Module):
    """A correct residual block built here, to test zero_init_residual_ independently."""

    def __init__(self, features: int):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return _reference_block(a, self.linear1, self.linear2)


def check_zero_init_residual(zero_init_residual_) -> None:
    expect_own_implementation(zero_init_residual_, "zero_init_residual_")
    fresh_seed()
    features = randint(3, 12)
    block = randomize_(_ReferenceBlock(features))
    params = {name: p for name, p in block.named_parameters()}
    linear1_before = {k: v.detach().clone() for k, v in block.linear1.state_dict().items()}
    with quiet():
        result = zero_init_residual_(block)
    expect(result is block, "zero_init_residual_ must change the block in place and return it",
           "a different object" if result is not None else "None", "the same block")
    for name, p in block.named_parameters():
        expect(p is params.get(name),
               f"zero_init_residual_ must fill the existing parameter {name} in place",
               "a new Parameter object", "the same Parameter, with its values set to zero")
        expect(p.requires_grad, f"{name} must stay trainable (requires_grad=True)", False, True)
    for name in ("weight", "bias"):
        value = getattr(block.linear2, name)
        expect(torch.count_nonzero(value).item() == 0, f"linear2.{name} after zero_init_residual_",
               f"{torch.count_nonzero(value).item()} nonzero entries", "all zeros")
    for name, value in block.linear1.state_dict().items():
        expect(torch.equal(value, linear1_before[name]),
               f"zero_init_residual_ must not change linear1.{name}", "changed", "unchanged")
    a = torch.randn(randint(3, 9), features)
    with torch.no_grad():
        expect_close(block(a), F.relu(a), "a zero-initialised block must compute relu(a)")


def check_residual_mlp(residual_mlp) -> None:
    expect_own_implementation(residual_mlp, "residual_mlp")
    fresh_seed()
    for num_blocks in (1, randint(2, 4)):
        # distinct sizes, so each Linear layer's role is clear from its shape
        in_features, width, num_classes = randint(2, 4), randint(10, 16), randint(5, 8)
        args = f"residual_mlp({in_features}, {width}, {num_blocks}, {num_classes})"
        with quiet():
            model = residual_mlp(in_features, width, num_blocks, num_classes)
        expect(isinstance(model, nn.Module), f"{args} must return an nn.Module",
               type(model).__name__, "nn.Module")
        expect_own_implementation(model, "residual_mlp")
        model = randomize_(copy.deepcopy(model))
        linears = _expect_residual_mlp_layers(model, args, in_features, width, num_blocks,
                                              num_classes)
        X = torch.randn(randint(4, 12), in_features)
        with torch.no_grad(), quiet():
            logits = model(X)
            expected = _reference_residual_mlp(X, linears)
        expect_close(logits, expected,
                     f"{args} output: Linear, ReLU, {num_blocks} residual blocks, Linear")
    expect_value_error(lambda: residual_mlp(3, 8, -1, 2), "residual_mlp(3, 8, -1, 2)",
                       "num_blocks cannot be negative")


def _expect_residual_mlp_layers(model, args, in_features, width, num_blocks, num_classes):
    """The Linear layers by role: (input, [(linear1, linear2) per block], output).

    Roles come from shapes (input and output layers) and from the spec's names (each block's
    `linear1` and `linear2`), never from the order in which the layers were registered; blocks are
    taken in the order the forward pass calls them.
    """
    linears = linear_layers(model)
    expected_count = 2 + 2 * num_blocks
    expect(len(linears) == expected_count, f"{args}: number of nn.Linear layers", len(linears),
           f"{expected_count} (input layer, 2 per block, output layer)")
    shapes = [(m.in_features, m.out_features) for m in linears]
    inputs = [m for m in linears if (m.in_features, m.out_features) == (in_features, width)]
    outputs = [m for m in linears if (m.in_features, m.out_features) == (width, num_classes)]
    hidden = [m for m in linears if (m.in_features, m.out_features) == (width, width)]
    expected_shapes = ([(in_features, width)] + [(width, width)] * (2 * num_blocks)
                       + [(width, num_classes)])
    if len(inputs) != 1 or len(outputs) != 1 or len(hidden) != 2 * num_blocks:
        fail(f"{args}: (in_features, out_features) of the Linear layers", shapes, expected_shapes)
    expected_params = sum(i * o + o for i, o in expected_shapes)
    expect(count_params(model) == expected_params, f"{args}: number of parameters",
           count_params(model), expected_params)
    blocks = _blocks_in_call_order(model, args, in_features, num_blocks)
    return inputs[0], [(b.linear1, b.linear2) for b in blocks], outputs[0]


def _blocks_in_call_order(model, args, in_features, num_blocks) -> list[nn.Module]:
    """The modules with `linear1` and `linear2` attributes, in the order forward calls them."""
    blocks = [m for m in model.modules() if isinstance(getattr(m, "linear1", None), nn.Linear)
              and isinstance(getattr(m, "linear2", None), nn.Linear)]
    expect(len(blocks) == num_blocks,
           f"{args}: number of residual blocks (modules with attributes linear1 and linear2)",
           len(blocks), num_blocks)
    calls: list[nn.Module] = []
    hooks = [b.register_forward_pre_hook(lambda module, inputs: calls.append(module))
             for b in blocks]
    try:
        with torch.no_grad(), quiet():
            model(torch.randn(2, in_features))
    finally:
        for hook in hooks:
            hook.remove()
    order = list(dict.fromkeys(calls))  # first call of each block
    expect(len(order) == num_blocks and len(calls) == num_blocks,
           f"{args}: residual blocks called in the forward pass (each exactly once)",
           f"{len(calls)} calls of {len(order)} blocks", f"{num_blocks} calls of {num_blocks}")
    return order


def _reference_residual_mlp(X, linears) -> torch.Tensor:
    first, blocks, last = linears
    h = F.relu(F.linear(X, first.weight, first.bias))  # (N, in) -> (N, width)
    for linear1, linear2 in blocks:
        h = _reference_block(h, linear1, linear2)  # (N, width) -> (N, width)
    return F.linear(h, last.weight, last.bias)  # (N, width) -> (N, num_classes)
