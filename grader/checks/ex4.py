"""Hidden tests for ex4_image_resnets: `resnet_cifar` and `count_parameters`.

Everything is checked by behaviour on fresh random inputs:

* parameter counts against a closed-form count computed from the depth (He et al., 2016, sec. 4.2:
  depth = 6n + 2, widths 16/32/64, option A/B/C shortcuts),
* the convolutions the forward pass actually runs (recorded with hooks, in call order): how many,
  their widths, strides and output sizes, and one Linear on a 64-vector (global average pooling),
* residual vs. plain: silencing one inner convolution makes a plain chain's output the same for
  every input, while a residual net still passes the input on through its shortcuts.

resnet_cifar builds on the student's Exercise 3 classes, pasted into the ungraded answer cell
`ex3_blocks` (no later exercise hands out an earlier answer): a wrong pasted BasicBlock costs
resnet_cifar its points, reported as a failure with observed/expected, never a bare exception.
"""

from __future__ import annotations

import copy
import numbers
import random
from dataclasses import dataclass

import torch
from torch import nn

from grader.checks.common import (
    expect,
    expect_own_implementation,
    expect_value_error,
    fail,
    fresh_seed,
    quiet,
    seeded,
)

WIDTHS = (16, 32, 64)
SHORTCUTS = ("A", "B", "C")


# ---------------------------------------------------------------------------------------------
# Reference facts, computed from the architecture (never stored numbers)
# ---------------------------------------------------------------------------------------------
def blocks_per_stage(depth: int) -> int:
    """n in depth = 6n + 2."""
    return (depth - 2) // 6


def expected_parameter_count(depth: int, num_classes: int = 10, shortcut: str = "A") -> int:
    """Closed-form parameter count of the CIFAR ResNet (3x3 convs without bias, BN has 2C)."""
    n = blocks_per_stage(depth)

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k

    total = conv(3, 16, 3) + 2 * 16  # stem conv + BN
    cin = WIDTHS[0]
    for stage, width in enumerate(WIDTHS):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            total += conv(cin, width, 3) + 2 * width + conv(width, width, 3) + 2 * width
            projection = shortcut == "C" or (shortcut == "B" and (stride != 1 or cin != width))
            if projection:
                total += conv(cin, width, 1) + 2 * width  # 1x1 conv + BN
            cin = width
    return total + WIDTHS[-1] * num_classes + num_classes  # final Linear


@dataclass
class ConvCall:
    module: nn.Conv2d
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    out_size: int  # spatial height of the output


def expected_3x3_calls(depth: int, size: int = 32) -> list[tuple[int, int, int]]:
    """(out_channels, stride, out_size) of every 3x3 conv, in call order."""
    n = blocks_per_stage(depth)
    calls = [(16, 1, size)]
    for stage, width in enumerate(WIDTHS):
        size = size // 2 if stage > 0 else size
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            calls += [(width, stride, size), (width, 1, size)]
    return calls


def expected_1x1_calls(depth: int, shortcut: str, size: int = 32) -> list[tuple[int, int, int]]:
    """(out_channels, stride, out_size) of every 1x1 projection conv, in call order."""
    if shortcut == "A":
        return []
    n = blocks_per_stage(depth)
    calls = []
    for stage, width in enumerate(WIDTHS):
        size = size // 2 if stage > 0 else size
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            if shortcut == "C" or stride != 1:
                calls.append((width, stride, size))
    return calls


# ---------------------------------------------------------------------------------------------
# Tracing the student's model
# ---------------------------------------------------------------------------------------------
def trace(model: nn.Module, X: torch.Tensor) -> tuple[torch.Tensor, list[ConvCall], list]:
    """Run `model(X)` and record every Conv2d and Linear call in order."""
    convs: list[ConvCall] = []
    linears: list[tuple[nn.Linear, tuple]] = []

    def on_conv(module, inputs, output):
        k = module.kernel_size[0]
        s = module.stride[0]
        convs.append(ConvCall(module, k, s, inputs[0].shape[1], output.shape[1], output.shape[2]))

    def on_linear(module, inputs, output):
        linears.append((module, tuple(inputs[0].shape)))

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(on_conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(on_linear))
    try:
        with torch.no_grad(), quiet():
            logits = model(X)
    finally:
        for h in handles:
            h.remove()
    return logits, convs, linears


def _build(resnet_cifar, depth: int, num_classes: int, shortcut: str, residual: bool):
    what = f"resnet_cifar({depth}, num_classes={num_classes}, shortcut={shortcut!r}, " \
           f"residual={residual})"
    try:
        with quiet():
            model = resnet_cifar(depth, num_classes=num_classes, shortcut=shortcut,
                                 residual=residual)
    except Exception as exc:  # report instead of crashing with a bare traceback
        fail(f"{what} raised an error (it builds on your BasicBlock and shortcuts from the top "
             "of the notebook: does their check cell pass?)", f"{type(exc).__name__}: {exc}",
             "a model")
    expect(isinstance(model, nn.Module), f"{what} must return an nn.Module",
           type(model).__name__, "nn.Module")
    expect_own_implementation(model, "resnet_cifar")
    return model, what


def _check_structure(model: nn.Module, what: str, depth: int, num_classes: int,
                     shortcut: str) -> list[ConvCall]:
    batch = random.randint(2, 4)
    X = torch.randn(batch, 3, 32, 32)
    model.eval()
    try:
        logits, convs, linears = trace(model, X)
    except Exception as exc:
        fail(f"{what}: forward pass on a (N, 3, 32, 32) batch failed (your BasicBlock from the "
             "top of the notebook runs in it)",
             f"{type(exc).__name__}: {exc}", "logits of shape (N, num_classes)")
    expect(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (batch, num_classes),
           f"{what}: output shape for input {tuple(X.shape)}",
           tuple(getattr(logits, "shape", ())), (batch, num_classes))

    n = blocks_per_stage(depth)
    got3 = [(c.out_channels, c.stride, c.out_size) for c in convs if c.kernel == 3]
    want3 = expected_3x3_calls(depth)
    expect(len(got3) == len(want3),
           f"{what}: number of 3x3 convolutions run in the forward pass (6n+1 with n={n})",
           len(got3), len(want3))
    for i, (got, want) in enumerate(zip(got3, want3, strict=True)):
        expect(got == want,
               f"{what}: 3x3 convolution #{i + 1} in call order, as "
               "(out_channels, stride, output height) for a 32x32 input; stages use widths "
               "16/32/64 and only the first conv of stages 2 and 3 has stride 2",
               got, want)
    others = [c for c in convs if c.kernel not in (1, 3)]
    expect(not others, f"{what}: only 3x3 (and 1x1 projection) convolutions are expected",
           [f"{c.kernel}x{c.kernel}" for c in others], "none")
    got1 = [(c.out_channels, c.stride, c.out_size) for c in convs if c.kernel == 1]
    want1 = expected_1x1_calls(depth, shortcut)
    expect(got1 == want1,
           f"{what}: 1x1 projection convolutions as (out_channels, stride, output height); "
           "option A uses none, B only where the shape changes, C in every block",
           got1, want1)

    expect(len(linears) == 1, f"{what}: number of Linear layers run", len(linears), 1)
    _, in_shape = linears[0]
    expect(in_shape == (batch, WIDTHS[-1]),
           f"{what}: input shape of the final Linear (global average pooling over the 8x8 map "
           "leaves one number per channel)", in_shape, (batch, WIDTHS[-1]))
    return convs


def _check_count(model: nn.Module, what: str, depth: int, num_classes: int, shortcut: str) -> None:
    got = sum(p.numel() for p in model.parameters())
    want = expected_parameter_count(depth, num_classes, shortcut)
    expect(got == want, f"{what}: number of parameters", f"{got:,}", f"{want:,}")


def _outputs_vary(model: nn.Module, conv: nn.Conv2d, batch: int = 4) -> float:
    """Silence `conv` (weights 0) in a copy; return how much logits differ between inputs."""
    twin = copy.deepcopy(model).eval()
    index = [i for i, m in enumerate(model.modules()) if m is conv][0]
    silenced = list(twin.modules())[index]
    with torch.no_grad():
        silenced.weight.zero_()
        if silenced.bias is not None:
            silenced.bias.zero_()
        logits = twin(torch.randn(batch, 3, 32, 32))
    return (logits - logits[:1]).abs().max().item()


# ---------------------------------------------------------------------------------------------
# Public checks (called from the hidden-test cells)
# ---------------------------------------------------------------------------------------------
def check_resnet_cifar(resnet_cifar) -> None:
    seed = fresh_seed()
    random.seed(seed)
    expect_own_implementation(resnet_cifar, "resnet_cifar")

    # Invalid arguments: depth must be 6n + 2 with n >= 1, shortcut one of A/B/C.
    bad_depths = [random.choice([d for d in range(9, 120) if (d - 2) % 6 != 0]), 21, -4]
    for depth in bad_depths:
        expect_value_error(lambda d=depth: resnet_cifar(d), f"resnet_cifar({depth})",
                            "depth must be 6n + 2 with n >= 1")
    expect_value_error(lambda: resnet_cifar(20, shortcut="D"), "resnet_cifar(20, shortcut='D')",
                        "shortcut must be 'A', 'B' or 'C'")

    with seeded(seed):
        depth = random.choice([8, 14, 20])
        num_classes = random.randint(2, 12)
        # Structure and counts for every shortcut option, residual and plain.
        for shortcut in SHORTCUTS:
            model, what = _build(resnet_cifar, depth, num_classes, shortcut, True)
            convs = _check_structure(model, what, depth, num_classes, shortcut)
            _check_count(model, what, depth, num_classes, shortcut)
            if shortcut == "A":
                residual_model, residual_convs = model, convs
        plain, what = _build(resnet_cifar, depth, num_classes, "A", False)
        plain_convs = _check_structure(plain, what, depth, num_classes, "A")
        # The plain twin has the same layers, so (option A) the same parameter count.
        _check_count(plain, what, depth, num_classes, "A")

        # Residual vs plain: silence one inner 3x3 conv (not the stem).
        k = random.randrange(1, len(plain_convs))
        spread = _outputs_vary(plain, plain_convs[k].module)
        expect(spread < 1e-5,
               f"{what}: with 3x3 conv #{k + 1} set to zero, a plain chain cannot pass anything "
               "on, so the logits should be the same for every input (are shortcuts still "
               "added?)", f"logits differ by up to {spread:.3g}", "identical logits")
        spread = _outputs_vary(residual_model, residual_convs[k].module)
        expect(spread > 1e-4,
               f"resnet_cifar({depth}, residual=True): with 3x3 conv #{k + 1} set to zero the "
               "shortcuts should still carry the input to the output (are they added?)",
               "identical logits for different inputs", "logits that depend on the input")

        # Deep nets: exact counts from the formula (cheap to build, no forward pass).
        deep = random.choice([32, 44, 56, 110])
        for shortcut in ("A", "B"):
            model, what = _build(resnet_cifar, deep, 10, shortcut, True)
            _check_count(model, what, deep, 10, shortcut)


def _random_model() -> tuple[nn.Module, int, int]:
    """A small conv net with some frozen parameters and buffers; (model, trainable, total)."""
    c_in, c_mid, classes = random.randint(1, 4), random.randint(2, 8), random.randint(2, 7)
    model = nn.Sequential(
        nn.Conv2d(c_in, c_mid, 3, padding=1, bias=random.random() < 0.5),
        nn.BatchNorm2d(c_mid),  # weight/bias are parameters; running stats are buffers
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c_mid, classes),
    )
    model.register_buffer("scale", torch.ones(random.randint(3, 9)))
    params = list(model.parameters())
    frozen = random.sample(params, random.randint(1, len(params) - 1))
    for p in frozen:
        p.requires_grad_(False)
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return model, trainable, total


def check_count_parameters(count_parameters) -> None:
    seed = fresh_seed()
    random.seed(seed)
    expect_own_implementation(count_parameters, "count_parameters")
    for _ in range(3):
        model, trainable, total = _random_model()
        flags = [p.requires_grad for p in model.parameters()]
        cases = [("count_parameters(model)", lambda m=model: count_parameters(m), trainable),
                 ("count_parameters(model, trainable_only=True)",
                  lambda m=model: count_parameters(m, trainable_only=True), trainable),
                 ("count_parameters(model, trainable_only=False)",
                  lambda m=model: count_parameters(m, trainable_only=False), total)]
        for what, call, want in cases:
            got = call()
            expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
                   f"{what} must return an int", type(got).__name__, "int")
            expect(got == want,
                   f"{what} on a small conv net with some frozen parameters and BatchNorm "
                   "buffers (buffers are not parameters)", got, want)
        expect([p.requires_grad for p in model.parameters()] == flags,
               "count_parameters must not change requires_grad", "changed", "unchanged")
    got = count_parameters(nn.ReLU())
    expect(got == 0, "count_parameters(nn.ReLU()) (no parameters)", got, 0)


# ---------------------------------------------------------------------------------------------
# count_macs: multiply-adds of one forward pass, against a reference counted here and now
# ---------------------------------------------------------------------------------------------
def reference_macs(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """Multiply-adds of Conv2d and Linear calls for ONE input of shape `input_size`, counted with
    hooks on a copy (every call counts: a layer used twice counts twice, an unused one not)."""
    model = copy.deepcopy(model).eval()
    total = 0

    def on_call(module, inputs, output):
        nonlocal total
        per_output = module.weight[0].numel()  # in_channels / groups * kh * kw, or in_features
        total += output.numel() * per_output

    handles = [m.register_forward_hook(on_call) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        model(torch.randn(1, *input_size))
    for h in handles:
        h.remove()
    return total


def _conv(cin: int, cout: int, groups: int | None = None, dilated: bool = False) -> nn.Conv2d:
    k = 3 if dilated else random.choice([1, 3, 5])
    if groups is None:
        groups = random.choice([g for g in (1, 2) if cin % g == 0 and cout % g == 0])
    # dilation 2 or 3 and padding 1 (not dilation * (k // 2)): the map shrinks, so an answer
    # that sizes the output without the dilation counts a different number of outputs
    dilation = random.choice([2, 3]) if dilated else 1
    padding = 1 if dilated else k // 2
    # padding k // 2: the map never shrinks below 1x1, however many stride-2 layers follow
    return nn.Conv2d(cin, cout, k, stride=1 if dilated else random.choice([1, 2]),
                     padding=padding, dilation=dilation, groups=groups,
                     bias=random.random() < 0.5)


def _random_convnet(cin: int) -> nn.Module:
    """Convs of random kernel, stride, padding and groups (one grouped conv at least: an answer
    that ignores groups must fail every draw; the first conv is dilated: an answer that ignores
    dilation too), BN, ReLU, pooling, two Linear."""
    layers: list[nn.Module] = []
    c = cin
    convs = random.randint(2, 4)
    grouped = random.randrange(1, convs)  # one conv after the first (even channels) has groups=2
    for i in range(convs):
        cout = 2 * random.randint(2, 6)
        layers += [_conv(c, cout, 2 if i == grouped else None, dilated=i == 0),
                   nn.BatchNorm2d(cout), nn.ReLU()]
        c = cout
    hidden = random.randint(5, 12)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, hidden), nn.ReLU(),
               nn.Linear(hidden, random.randint(2, 10))]
    return nn.Sequential(*layers)


class _TwiceAndUnused(nn.Module):
    """A conv applied twice (shared weights), a residual projection, and a layer never called."""

    def __init__(self, cin: int):
        super().__init__()
        c = 2 * random.randint(2, 5)
        self.stem = nn.Conv2d(cin, c, 3, padding=1, bias=False)
        self.shared = nn.Conv2d(c, c, 3, padding=1)
        self.project = nn.Conv2d(c, 2 * c, 1, stride=2, bias=False)
        self.main = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False)
        self.unused = nn.Linear(1000, 1000)  # a million weights that never run
        self.head = nn.Linear(2 * c, random.randint(2, 9))

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.shared(torch.relu(self.shared(x))))  # (N, c, H, W), conv run twice
        x = torch.relu(self.main(x) + self.project(x))  # (N, 2c, H/2, W/2)
        return self.head(x.mean(dim=(2, 3)))


class _LinearOnTokens(nn.Module):
    """nn.Linear applied to a (N, H*W, C) tensor (one token per position, as in a transformer
    block): the Linear runs once per token, so its multiply-adds scale with H*W."""

    def __init__(self, cin: int):
        super().__init__()
        c, hidden = 2 * random.randint(2, 5), random.randint(5, 12)
        self.stem = nn.Conv2d(cin, c, 3, stride=2, padding=1)
        self.mix = nn.Linear(c, hidden)
        self.head = nn.Linear(hidden, random.randint(2, 9))

    def forward(self, x):
        tokens = self.stem(x).flatten(2).transpose(1, 2)  # (N, C, H', W') -> (N, H'W', C)
        return self.head(torch.relu(self.mix(tokens)).mean(dim=1))  # (N, H'W', h) -> (N, k)


def check_count_macs(count_macs) -> None:
    seed = fresh_seed()
    random.seed(seed)
    expect_own_implementation(count_macs, "count_macs")
    # (model, mode): a BatchNorm net in train mode (a forward pass would change it), and eval
    for make, training, what in [
            (_random_convnet, True, "a conv net with random strides, padding, dilation and groups"),
            (_TwiceAndUnused, random.random() < 0.5,
             "a net that calls one conv twice and never calls a Linear layer"),
            (_random_convnet, False, "another random conv net, in eval mode"),
            (_LinearOnTokens, random.random() < 0.5,
             "a net that applies a Linear layer to a (N, tokens, channels) tensor")]:
        cin = random.randint(1, 4)
        size = (cin, random.randint(9, 20), random.randint(9, 20))
        model = make(cin).train(training)
        mode, before = model.training, copy.deepcopy(model.state_dict())
        want = reference_macs(model, size)
        with quiet():
            got = count_macs(model, size)
        expect(isinstance(got, numbers.Integral) and not isinstance(got, bool),
               "count_macs must return an int", type(got).__name__, "int")
        expect(got == want, f"count_macs(model, {size}) on {what} (every Conv2d and Linear call "
               "in one forward pass of ONE input: output elements x multiply-adds per output)",
               f"{got:,}", f"{want:,}")
        expect(model.training == mode, "count_macs must leave the model's train/eval mode as it "
               "found it", "train" if model.training else "eval", "train" if mode else "eval")
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        expect(not changed, "count_macs must not change the model (in train mode a forward pass "
               "updates BatchNorm's running statistics)", f"changed: {changed[:3]}", "unchanged")
        hooks = [m for m in model.modules() if m._forward_hooks or m._forward_pre_hooks]
        expect(not hooks, "count_macs must remove the hooks it registers",
               f"{len(hooks)} modules still have hooks", "no hooks left")
