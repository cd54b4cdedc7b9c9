"""Hidden tests for ex1_degradation: plain_mlp, training_error, layer_gradient_norms.

Each check builds fresh random inputs and compares the student's result with a reference computed
here and now from the same parameters, so any correct implementation passes, whatever its style.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks.common import (
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
    same_state,
    snapshot,
)


def _reference_mlp_forward(linears: list[nn.Linear], X: torch.Tensor) -> torch.Tensor:
    """Linear layers in order, ReLU after every one but the last."""
    h = X
    for i, layer in enumerate(linears):
        h = F.linear(h, layer.weight, layer.bias)
        if i < len(linears) - 1:
            h = F.relu(h)
    return h


class _RecordingMLP(nn.Sequential):
    """nn.Sequential that records whether autograd was on during each forward call."""

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        self.grad_modes: list[bool] = []

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        self.grad_modes.append(torch.is_grad_enabled())
        return super().forward(X)


def _make_mlp(in_features: int, width: int, depth: int, num_classes: int) -> _RecordingMLP:
    """A plain MLP built here (not by the student) to test the other two functions on."""
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return _RecordingMLP(*layers)


def check_plain_mlp(plain_mlp) -> None:
    expect_own_implementation(plain_mlp, "plain_mlp")
    fresh_seed()
    for depth in (1, 2, randint(3, 7)):
        in_features, width, num_classes = randint(2, 6), randint(7, 12), randint(3, 5)
        args = f"plain_mlp({in_features}, {width}, {depth}, {num_classes})"
        model = _build_mlp(plain_mlp, "plain_mlp", args, in_features, width, depth,
                           num_classes)
        linears = linear_layers(model)
        expect(len(linears) == depth, f"{args}: number of nn.Linear layers", len(linears),
               f"{depth} (depth counts every Linear layer, the output layer included)")
        sizes = [in_features] + [width] * (depth - 1) + [num_classes]
        for i, layer in enumerate(linears):
            shape = (layer.in_features, layer.out_features)
            expect(shape == (sizes[i], sizes[i + 1]),
                   f"{args}: (in_features, out_features) of Linear layer {i}", shape,
                   (sizes[i], sizes[i + 1]))
        X = torch.randn(randint(5, 20), in_features)
        with torch.no_grad(), quiet():
            logits = model(X)
            expected = _reference_mlp_forward(linears, X)
        expect_close(logits, expected,
                     f"{args}: output (ReLU after every Linear but the last, none at the end)")
    for depth in (0, -randint(1, 1000)):  # a wide range: no fixed guess passes by luck
        expect_value_error(lambda d=depth: plain_mlp(3, 8, d, 2), f"plain_mlp(3, 8, {depth}, 2)",
                           "depth must be at least 1")


def _per_batch_mean(wrong: torch.Tensor, N: int, batch_size: int = 32) -> float:
    """The mean of per-batch error rates: what an answer that averages batches returns."""
    is_wrong = torch.zeros(N)
    is_wrong[wrong] = 1.0
    batches = is_wrong.split(batch_size)  # the last one is shorter when N % batch_size != 0
    return sum(b.mean().item() for b in batches) / len(batches)


def _labelled_data(model: nn.Module, in_features: int, num_classes: int):
    """X, y where the model is wrong on a random subset of known size. The size leaves a short
    last batch (of the default 32) whose error rate differs from the whole set's, so averaging
    per-batch rates never gives the right fraction by chance."""
    while True:
        N = randint(37, 91)
        num_wrong = randint(1, N // 3)
        wrong = torch.randperm(N)[:num_wrong]
        if abs(_per_batch_mean(wrong, N) - num_wrong / N) > 1e-3:
            break
    X = torch.randn(N, in_features)
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    y = predictions.clone()
    y[wrong] = (y[wrong] + torch.randint(1, num_classes, (num_wrong,))) % num_classes
    return X, y, num_wrong / N


def check_training_error(training_error) -> None:
    expect_own_implementation(training_error, "training_error")
    fresh_seed()
    in_features, num_classes = randint(2, 5), randint(3, 6)
    for start_in_train_mode in (True, False):
        model = _make_mlp(in_features, randint(8, 16), randint(2, 4), num_classes)
        X, y, expected = _labelled_data(model, in_features, num_classes)
        model.train(start_in_train_mode)
        before = snapshot(model)
        model.grad_modes.clear()
        with quiet():
            result = training_error(model, X, y)
        if isinstance(result, torch.Tensor):
            fail("training_error must return a Python float (use .item())",
                 f"a tensor {result!r}", f"{expected:.6g}")
        expect(isinstance(result, float), "training_error must return a float",
               type(result).__name__, "float")
        num_wrong = round(expected * len(y))
        expect(abs(result - expected) < 1e-6,
               f"training_error on {len(y)} examples of which {num_wrong} are misclassified "
               f"should return the fraction misclassified, {num_wrong}/{len(y)}", result, expected)
        mode = "train" if start_in_train_mode else "eval"
        after = [m.training for m in model.modules()]
        expect(all(t == start_in_train_mode for t in after),
               f"training_error must leave the model in {mode} mode, as it found it",
               "train" if model.training else "eval", mode)
        grad_modes = model.grad_modes
        expect(grad_modes and not any(grad_modes),
               "training_error must not track gradients (use torch.no_grad())",
               "autograd on during the forward pass" if any(grad_modes) else "model never called",
               "autograd off")
        expect(same_state(model, before),
               "training_error must not change the model's parameters", "changed", "unchanged")


def check_layer_gradient_norms(layer_gradient_norms) -> None:
    expect_own_implementation(layer_gradient_norms, "layer_gradient_norms")
    fresh_seed()
    for depth in (1, randint(3, 6)):
        in_features, num_classes = randint(2, 5), randint(3, 6)
        model = _make_mlp(in_features, randint(8, 16), depth, num_classes)
        X = torch.randn(randint(20, 60), in_features)
        y = torch.randint(0, num_classes, (len(X),))
        reference = copy.deepcopy(model)
        F.cross_entropy(reference(X), y).backward()
        expected = [layer.weight.grad.norm().item() for layer in linear_layers(reference)]
        before = snapshot(model)
        with quiet():
            result = layer_gradient_norms(model, X, y)
        expect(isinstance(result, list | tuple),
               "layer_gradient_norms must return a list of floats", type(result).__name__, "list")
        expect(len(result) == depth,
               f"layer_gradient_norms on a model with {depth} Linear layers: length of the list",
               len(result), depth)
        try:
            values = torch.tensor([float(v) for v in result])
        except (TypeError, ValueError, RuntimeError):
            fail("layer_gradient_norms must return numbers", result, "a list of floats")
        expect_close(values, torch.tensor(expected),
                     "Frobenius norms of each Linear layer's weight gradient, input side first, "
                     "after one cross-entropy backward pass", rtol=1e-4, atol=1e-6)
        expect(same_state(model, before),
               "layer_gradient_norms must leave the parameters unchanged (no optimizer step)",
               "parameters changed", "parameters unchanged")


# --- the paper's regime: BatchNorm after every hidden Linear layer, He initialisation ---------

def _called_in_order(model: nn.Module, X: torch.Tensor) -> tuple[list[nn.Linear], list]:
    """The Linear and BatchNorm1d layers in the order the forward pass calls them."""
    calls: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda module, inputs: calls.append(module))
             for m in model.modules() if isinstance(m, nn.Linear | nn.BatchNorm1d)]
    try:
        with torch.no_grad(), quiet():
            model.eval()(X)
    finally:
        for hook in hooks:
            hook.remove()
    linears = [m for m in calls if isinstance(m, nn.Linear)]
    norms = [m for m in calls if isinstance(m, nn.BatchNorm1d)]
    return linears, norms


def _reference_bn_mlp(X, linears, norms, training: bool) -> torch.Tensor:
    """Linear, BatchNorm, ReLU for every layer but the last; the last gives the logits."""
    h = X
    for i, layer in enumerate(linears):
        h = F.linear(h, layer.weight, layer.bias)
        if i < len(linears) - 1:
            bn = norms[i]
            if training:
                h = F.batch_norm(h, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
            else:
                h = F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                 training=False, eps=bn.eps)
            h = F.relu(h)
    return h


def _build_mlp(build, name: str, args: str, *sizes: int) -> nn.Module:
    """The student's `build(*sizes)` (the call spelled `args`), checked to be their own
    torch module."""
    with quiet():
        model = build(*sizes)
    expect(isinstance(model, nn.Module), f"{args} must return a torch module",
           type(model).__name__, "nn.Sequential")
    expect_own_implementation(model, name)
    return model


def check_plain_bn_mlp(plain_bn_mlp) -> None:
    expect_own_implementation(plain_bn_mlp, "plain_bn_mlp")
    fresh_seed()
    for depth in (1, 2, randint(3, 6)):
        in_features, width, num_classes = randint(2, 6), randint(7, 12), randint(3, 5)
        args = f"plain_bn_mlp({in_features}, {width}, {depth}, {num_classes})"
        model = randomize_(copy.deepcopy(
            _build_mlp(plain_bn_mlp, "plain_bn_mlp", args, in_features, width, depth, num_classes)))
        X = torch.randn(randint(8, 20), in_features)
        linears, norms = _called_in_order(model, X)
        sizes = [in_features] + [width] * (depth - 1) + [num_classes]
        got = [(m.in_features, m.out_features) for m in linears]
        want = [(sizes[i], sizes[i + 1]) for i in range(depth)]
        expect(got == want, f"{args}: Linear layers in the order they are called, as "
               "(in_features, out_features)", got, want)
        got = [m.num_features for m in norms]
        expect(got == [width] * (depth - 1), f"{args}: BatchNorm1d layers called, as "
               "num_features (one after every Linear layer but the last)", got,
               [width] * (depth - 1))
        for training in (True, False):
            model.train(training)
            with torch.no_grad(), quiet():
                logits = model(X)
            expected = _reference_bn_mlp(X, linears, norms, training)
            mode = "train" if training else "eval"
            expect_close(logits, expected, f"{args} in {mode} mode: Linear, BatchNorm, ReLU for "
                         "every layer but the last, which gives the logits")
    _expect_he_init(plain_bn_mlp)
    for depth in (0, -randint(1, 1000)):  # a wide range: no fixed guess passes by luck
        expect_value_error(lambda d=depth: plain_bn_mlp(3, 8, d, 2),
                           f"plain_bn_mlp(3, 8, {depth}, 2)", "depth must be at least 1")


def _expect_he_init(plain_bn_mlp) -> None:
    """Weights of every Linear layer followed by a ReLU: mean 0, variance 2 / fan_in — layer by
    layer (the rule is per layer: pooled, the many width x width weights hid a first layer left
    at PyTorch's default, or one scaled by fan_out)."""
    # in_features >= 16: the first layer has >= 768 weights, so its std is estimated within
    # about 0.026 (1 / sqrt(2n)) and the 0.85-1.15 band is over 5 standard errors wide
    in_features, width, depth = randint(16, 32), randint(48, 96), randint(5, 8)
    args = f"plain_bn_mlp({in_features}, {width}, {depth}, 3)"
    model = _build_mlp(plain_bn_mlp, "plain_bn_mlp", args, in_features, width, depth, 3)
    linears, _ = _called_in_order(model, torch.randn(4, in_features))
    for index, m in enumerate(linears[:-1]):
        # each weight divided by He's standard deviation sqrt(2 / fan_in): about N(0, 1) or
        # U(+-sqrt3); the mean's band is 6 standard errors (1 / sqrt(n)) wide
        z = (m.weight.detach() / (2.0 / m.in_features) ** 0.5).flatten()
        std, mean = z.std().item(), z.mean().item()
        ratio = f"std / sqrt(2 / fan_in) = {std:.3f}, mean / sqrt(2 / fan_in) = {mean:.3f}"
        expect(0.85 <= std <= 1.15 and abs(mean) <= 6.0 / z.numel() ** 0.5,
               f"{args}: initial weights of Linear layer {index + 1} of {depth} in call order "
               f"({m.in_features} -> {m.out_features}, followed by a ReLU), over {z.numel()} "
               "weights (He et al. 2015: zero mean, variance 2 / fan_in for every such layer; "
               "PyTorch's default gives a ratio of about 0.58)", ratio,
               "std / sqrt(2 / fan_in) = 1 (within 0.85-1.15), mean 0")
