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


class _BlockShell(nn.Module):
    """A block with the contract's attributes (``linear1``, ``linear2``) for testing
    zero_init_residual_ independently of the student's ResidualBlock.

    Its forward is deliberately *not* the residual block of the task (no ReLU): its source runs
    in the sandboxed subject, where a student's code could read it, so it must not be an answer.
    zero_init_residual_ only sets parameters, so the forward only has to show their effect:
    with linear2 zeroed it is the identity.
    """

    def __init__(self, features: int):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.linear1(a)) + a  # (N, f) -> (N, f)


def check_zero_init_residual(zero_init_residual_) -> None:
    expect_own_implementation(zero_init_residual_, "zero_init_residual_")
    fresh_seed()
    features = randint(3, 12)
    block = randomize_(_BlockShell(features))
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
        expect_close(block(a), a, "a block whose linear2 is zeroed must pass its input through")


def _built_mlps(build, name: str):
    """Yield (model, args, in_features, width, num_blocks, num_classes) for 0 (allowed: the
    task text says so), 1 and 2-4 blocks: the student's `build(in_features, width, num_blocks,
    num_classes)`, checked to be their own nn.Module, as a copy with fresh random parameters.
    `args` names the call."""
    expect_own_implementation(build, name)
    fresh_seed()
    for num_blocks in (0, 1, randint(2, 4)):
        # distinct sizes, so each layer's role is clear from its shape
        in_features, width, num_classes = randint(2, 4), randint(10, 16), randint(5, 8)
        args = f"{name}({in_features}, {width}, {num_blocks}, {num_classes})"
        try:
            with quiet():
                model = build(in_features, width, num_blocks, num_classes)
        except Exception as error:  # zero blocks are allowed: report it, not a traceback
            fail(f"{args} raised an error", f"{type(error).__name__}: {error}",
                 "a model (num_blocks >= 0 is allowed, 0 included)")
        expect(isinstance(model, nn.Module), f"{args} must return an nn.Module",
               type(model).__name__, "nn.Module")
        expect_own_implementation(model, name)
        yield randomize_(copy.deepcopy(model)), args, in_features, width, num_blocks, num_classes


def check_residual_mlp(residual_mlp) -> None:
    for model, args, in_features, width, num_blocks, num_classes in _built_mlps(
            residual_mlp, "residual_mlp"):
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


# --- pre-activation block and stack (He et al. 2016, Identity Mappings) ----------------------

def _reference_bn1d(x: torch.Tensor, bn: nn.BatchNorm1d, training: bool) -> torch.Tensor:
    if training:  # batch statistics; the running buffers are not compared
        return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False,
                        eps=bn.eps)


def _reference_preact(a: torch.Tensor, block: nn.Module, training: bool) -> torch.Tensor:
    """a + linear2(relu(bn2(linear1(relu(bn1(a)))))): nothing after the addition."""
    h = F.relu(_reference_bn1d(a, block.bn1, training))
    h = F.linear(h, block.linear1.weight, block.linear1.bias)
    h = F.relu(_reference_bn1d(h, block.bn2, training))
    return a + F.linear(h, block.linear2.weight, block.linear2.bias)


PREACT_PARTS = {"bn1": nn.BatchNorm1d, "linear1": nn.Linear, "bn2": nn.BatchNorm1d,
                "linear2": nn.Linear}


def _is_preact_block(module: nn.Module) -> bool:
    return all(isinstance(getattr(module, name, None), kind)
               for name, kind in PREACT_PARTS.items())


def _expect_preact_parts(block: nn.Module, what: str, features: int) -> None:
    for name, kind in PREACT_PARTS.items():
        part = getattr(block, name, None)
        expect(isinstance(part, kind), f"{what}.{name} must be an nn.{kind.__name__}",
               type(part).__name__, f"nn.{kind.__name__}")
        size = (part.in_features, part.out_features) if kind is nn.Linear else part.num_features
        want = (features, features) if kind is nn.Linear else features
        expect(size == want, f"{what}.{name}: size", size, want)
    want = 2 * (features * features + features) + 4 * features
    expect(count_params(block) == want,
           f"{what}: number of parameters (two Linear layers with bias, two BatchNorm1d)",
           count_params(block), want)


def check_preact_block(PreActBlock) -> None:
    expect_own_implementation(PreActBlock, "PreActBlock")
    fresh_seed()
    for features in (randint(2, 5), randint(8, 20)):
        what = f"PreActBlock({features})"
        block = build_module(PreActBlock, "PreActBlock", what, features)
        _expect_preact_parts(block, what, features)
        a = torch.randn(randint(4, 9), features) * 2.0  # negative entries too
        for training in (True, False):
            copy_ = randomize_(copy.deepcopy(block)).train(training)
            a_in = a.clone()
            with torch.no_grad(), quiet():
                out = copy_(a_in)
                expected = _reference_preact(a, copy_, training)
            expect(torch.equal(a_in, a), f"{what}.forward must not modify its input in place",
                   "the input tensor changed", "the input unchanged")
            mode = "train" if training else "eval"
            expect_close(out, expected, f"{what} in {mode} mode: "
                         "a + linear2(relu(bn2(linear1(relu(bn1(a))))))")
        identity = randomize_(copy.deepcopy(block)).eval()
        with torch.no_grad():
            identity.linear2.weight.zero_()
            identity.linear2.bias.zero_()
            with quiet():
                out = identity(a.clone())
        expect_close(out, a, f"{what} with linear2 set to zero must return its input exactly "
                     "(negative entries included: nothing may follow the addition)")
        _expect_preact_gradient(randomize_(copy.deepcopy(block)).train(), a, what)


def _expect_preact_gradient(block: nn.Module, a: torch.Tensor, what: str) -> None:
    a_student = a.clone().requires_grad_(True)
    with quiet():
        block(a_student).pow(2).sum().backward()
    if a_student.grad is None:
        fail(f"{what}: gradients must flow back to the input", "no gradient at the input",
             "the gradient of the block's output with respect to a")
    a_reference = a.clone().requires_grad_(True)
    _reference_preact(a_reference, block, True).pow(2).sum().backward()
    expect_close(a_student.grad, a_reference.grad,
                 f"{what}: gradient of sum(block(a)**2) with respect to its input a")


def check_preact_mlp(preact_mlp) -> None:
    for model, args, in_features, width, num_blocks, num_classes in _built_mlps(
            preact_mlp, "preact_mlp"):
        parts = _preact_mlp_parts(model, args, in_features, width, num_blocks, num_classes)
        X = torch.randn(randint(6, 12), in_features)
        for training in (True, False):
            model.train(training)
            with torch.no_grad(), quiet():
                logits = model(X)
            expected = _reference_preact_mlp(X, *parts, training)
            mode = "train" if training else "eval"
            expect_close(logits, expected, f"{args} in {mode} mode: Linear, {num_blocks} "
                         "pre-activation blocks, BatchNorm, ReLU, Linear")
    expect_value_error(lambda: preact_mlp(3, 8, -1, 2), "preact_mlp(3, 8, -1, 2)",
                       "num_blocks cannot be negative")


def _preact_mlp_parts(model, args, in_features, width, num_blocks, num_classes):
    """(input Linear, blocks in call order, final BatchNorm1d, output Linear), found by shape
    and by the block's attribute names, never by registration order."""
    blocks = [m for m in model.modules() if _is_preact_block(m)]
    expect(len(blocks) == num_blocks,
           f"{args}: number of pre-activation blocks (modules with bn1, linear1, bn2, linear2)",
           len(blocks), num_blocks)
    inside = {id(p) for b in blocks for p in b.modules()}
    linears = [m for m in linear_layers(model) if id(m) not in inside]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d) and id(m) not in inside]
    shapes = [(m.in_features, m.out_features) for m in linears]
    expect(sorted(shapes) == sorted([(in_features, width), (width, num_classes)]),
           f"{args}: Linear layers outside the blocks, as (in_features, out_features)", shapes,
           [(in_features, width), (width, num_classes)])
    expect(len(norms) == 1 and norms[0].num_features == width,
           f"{args}: BatchNorm1d layers outside the blocks (one, before the final ReLU)",
           [m.num_features for m in norms], [width])
    first = next(m for m in linears if m.in_features == in_features)
    last = next(m for m in linears if m.out_features == num_classes)
    for block in blocks:
        _expect_preact_parts(block, f"{args}: a block", width)
    want = (in_features * width + width + width * num_classes + num_classes + 2 * width
            + num_blocks * (2 * (width * width + width) + 4 * width))
    expect(count_params(model) == want, f"{args}: number of parameters", count_params(model),
           want)
    calls: list[nn.Module] = []
    hooks = [b.register_forward_pre_hook(lambda module, inputs: calls.append(module))
             for b in blocks]
    try:
        with torch.no_grad(), quiet():
            model.eval()(torch.randn(2, in_features))
    finally:
        for hook in hooks:
            hook.remove()
    order = list(dict.fromkeys(calls))
    expect(len(calls) == num_blocks and len(order) == num_blocks,
           f"{args}: blocks called in the forward pass (each exactly once)",
           f"{len(calls)} calls of {len(order)} blocks", f"{num_blocks} calls of {num_blocks}")
    return first, order, norms[0], last


def _reference_preact_mlp(X, first, blocks, norm, last, training) -> torch.Tensor:
    h = F.linear(X, first.weight, first.bias)  # (N, in) -> (N, width), no ReLU: blocks start
    for block in blocks:                       # with their own BN and ReLU
        h = _reference_preact(h, block, training)
    h = F.relu(_reference_bn1d(h, norm, training))  # the last block's sum is not activated yet
    return F.linear(h, last.weight, last.bias)
