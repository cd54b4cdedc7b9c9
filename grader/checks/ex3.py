"""Hidden tests for ex3_shortcuts: ZeroPadShortcut, ProjectionShortcut, BasicBlock.

Zero padding may put the zero channels before, after or around the input channels: the check
accepts any placement that keeps the subsampled input channels, in order, as one contiguous block
and makes every other channel exactly zero. Projections and blocks are compared with a reference
forward pass computed from the student's own parameters, in train mode (batch statistics) and in
eval mode (running statistics), after fresh random values are written into a copy.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks.common import (
    CheckFailure,
    build_module,
    count_params,
    expect,
    expect_close,
    expect_own_implementation,
    expect_value_error,
    fail,
    fresh_seed,
    quiet,
    randint,
    randomize_,
)

ATOL, RTOL = 1e-4, 1e-4  # float32 convolutions summed in a different order


def _layers(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


def _image(N: int, C: int, H: int, W: int) -> torch.Tensor:
    # N(1, 1): no channel is all zeros, so a zero-padded channel is unambiguous
    return torch.randn(N, C, H, W) + 1.0


def _spatial_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # what x[..., ::stride] and a padded 3x3 conv produce


# --- ZeroPadShortcut ---------------------------------------------------------------------------

def zero_pad_offset(out: torch.Tensor, x: torch.Tensor, stride: int, what: str) -> int:
    """Check `out` is x subsampled by `stride` with zero channels added; return the offset.

    x: (N, C_in, H, W); out: (N, C_out, H', W') with the C_in subsampled input channels as one
    contiguous block starting at the returned offset, and all other channels exactly zero.
    """
    sub = x[:, :, ::stride, ::stride]  # (N, C_in, H', W')
    if not isinstance(out, torch.Tensor):
        fail(f"{what}: wrong type", type(out).__name__, "torch.Tensor")
    C_in, C_out = sub.shape[1], out.shape[1]
    expected_shape = (sub.shape[0], "C_out >= " + str(C_in), *sub.shape[2:])
    if out.dim() != 4 or out.shape[0] != sub.shape[0] or out.shape[2:] != sub.shape[2:] \
            or C_out < C_in:
        fail(f"{what}: wrong output shape (spatial subsampling by stride {stride}, extra zero "
             "CHANNELS, no spatial padding)", tuple(out.shape), expected_shape)
    out = out.detach().to(sub.dtype)
    for offset in range(C_out - C_in + 1):
        block = out[:, offset:offset + C_in]
        others = torch.cat([out[:, :offset], out[:, offset + C_in:]], dim=1)
        if torch.allclose(block, sub, atol=1e-6, rtol=0) and not others.any():
            return offset
    nonzero = [c for c in range(C_out) if out[:, c].any()]
    fail(f"{what}: the output must contain the input's channels subsampled as x[:, :, ::stride, "
         "::stride], in order, and zeros in every other channel",
         f"nonzero channels {nonzero}",
         f"{C_in} consecutive channels equal to the subsampled input")


def check_zero_pad_shortcut(ZeroPadShortcut) -> None:
    expect_own_implementation(ZeroPadShortcut, "ZeroPadShortcut")
    fresh_seed()
    C = randint(2, 6)
    # a change of channels with and without a stride, a stride without a change of channels
    cases = [(C, 2 * C, 2), (C, C + randint(1, 3), 2), (C, 2 * C, 1), (C, C, 1), (C, 2 * C, 3),
             (C, C, 2)]
    for in_channels, out_channels, stride in cases:
        args = f"ZeroPadShortcut({in_channels}, {out_channels}, {stride})"
        shortcut = build_module(ZeroPadShortcut, "ZeroPadShortcut", args,
                                in_channels, out_channels, stride)
        params = count_params(shortcut)
        expect(params == 0, f"{args} must have no parameters (option A is parameter-free)",
               f"{params} parameters", "0 parameters")
        H, W = randint(5, 9), randint(5, 9)  # odd sizes too: subsampling keeps ceil(H / stride)
        x = _image(randint(2, 4), in_channels, H, W)
        x_before = x.clone()
        for mode in (True, False):
            shortcut.train(mode)
            with torch.no_grad(), quiet():
                out = shortcut(x)
            zero_pad_offset(out, x_before, stride, f"{args} on input {tuple(x.shape)}")
        expect(torch.equal(x, x_before), f"{args} must not modify its input", "input changed",
               "input unchanged")
    expect_value_error(lambda: ZeroPadShortcut(8, 4, 2), "ZeroPadShortcut(8, 4, 2)",
                       "out_channels must be at least in_channels: zero padding cannot remove "
                       "channels")


# --- ProjectionShortcut ------------------------------------------------------------------------

def _reference_bn(x: torch.Tensor, bn: nn.BatchNorm2d, training: bool) -> torch.Tensor:
    if training:  # batch statistics, running buffers untouched
        return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False,
                        eps=bn.eps)


def projection_parts(shortcut: nn.Module, in_channels: int, out_channels: int, stride: int,
                     what: str) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """The one Conv2d (1x1, no bias) and one BatchNorm2d of a projection shortcut."""
    convs, bns = _layers(shortcut, nn.Conv2d), _layers(shortcut, nn.BatchNorm2d)
    expect(len(convs) == 1 and len(bns) == 1,
           f"{what}: layers (one 1x1 Conv2d, then one BatchNorm2d)",
           f"{len(convs)} Conv2d, {len(bns)} BatchNorm2d", "1 Conv2d, 1 BatchNorm2d")
    conv, bn = convs[0], bns[0]
    shape = (conv.in_channels, conv.out_channels, tuple(conv.kernel_size))
    expect(shape == (in_channels, out_channels, (1, 1)),
           f"{what}: Conv2d (in_channels, out_channels, kernel_size)", shape,
           (in_channels, out_channels, (1, 1)))
    expect(conv.bias is None, f"{what}: the 1x1 conv must have no bias (BatchNorm's shift makes "
           "it redundant)", "a bias", "bias=False")
    expect(bn.num_features == out_channels, f"{what}: BatchNorm2d features", bn.num_features,
           out_channels)
    expected_params = in_channels * out_channels + 2 * out_channels
    expect(count_params(shortcut) == expected_params, f"{what}: number of parameters",
           count_params(shortcut), expected_params)
    return conv, bn


def reference_projection(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d, stride: int,
                         training: bool) -> torch.Tensor:
    # (N, C_in, H, W) -> (N, C_out, H', W'): 1x1 conv with stride, then BatchNorm
    return _reference_bn(F.conv2d(x, conv.weight, stride=stride), bn, training)


def check_projection_shortcut(ProjectionShortcut) -> None:
    expect_own_implementation(ProjectionShortcut, "ProjectionShortcut")
    fresh_seed()
    C = randint(2, 6)
    # channels and stride change together, channels alone, the stride alone
    for in_channels, out_channels, stride in [(C, 2 * C, 2), (C, C + randint(1, 4), 1),
                                              (C, C, 2)]:
        args = f"ProjectionShortcut({in_channels}, {out_channels}, {stride})"
        shortcut = build_module(ProjectionShortcut, "ProjectionShortcut", args,
                                in_channels, out_channels, stride)
        conv, bn = projection_parts(shortcut, in_channels, out_channels, stride, args)
        x = _image(randint(3, 5), in_channels, randint(5, 9), randint(5, 9))
        for training in (True, False):
            copy_ = randomize_(copy.deepcopy(shortcut)).train(training)
            conv, bn = projection_parts(copy_, in_channels, out_channels, stride, args)
            with torch.no_grad():
                expected = reference_projection(x, conv, bn, stride, training)
                with quiet():
                    out = copy_(x)
            mode = "train" if training else "eval"
            expect_close(out, expected, f"{args} in {mode} mode: BatchNorm(conv1x1(x, stride))",
                         atol=ATOL, rtol=RTOL)


# --- BasicBlock --------------------------------------------------------------------------------

def _expect_conv3x3(conv: object, name: str, in_channels: int, out_channels: int, stride: int,
                    what: str) -> None:
    expect(isinstance(conv, nn.Conv2d), f"{what}.{name} must be an nn.Conv2d",
           type(conv).__name__, "nn.Conv2d")
    got = (conv.in_channels, conv.out_channels, tuple(conv.kernel_size), tuple(conv.stride),
           _padding(conv), conv.bias is not None)
    want = (in_channels, out_channels, (3, 3), (stride, stride), (1, 1), False)
    expect(got == want, f"{what}.{name}: (in, out, kernel_size, stride, padding, has bias)", got,
           want)


def _padding(conv: nn.Conv2d) -> tuple[int, ...]:
    """The conv's zero padding as numbers: padding="same" (stride 1) pads (k - 1) // 2 per side
    for an odd kernel, so a 3x3 conv with "same" is the same convolution as padding=1."""
    if conv.padding == "same":
        return tuple((k - 1) * d // 2 for k, d in zip(conv.kernel_size, conv.dilation,
                                                      strict=True))
    if isinstance(conv.padding, str):  # "valid"
        return (0, 0)
    return tuple(conv.padding)


def _expect_bn(bn: object, name: str, channels: int, what: str) -> None:
    expect(isinstance(bn, nn.BatchNorm2d) and bn.num_features == channels,
           f"{what}.{name} must be nn.BatchNorm2d({channels})",
           repr(bn), f"BatchNorm2d({channels})")


def _shortcut_kind(in_channels: int, out_channels: int, stride: int, option: str) -> str:
    if option == "C":
        return "projection"
    if in_channels == out_channels and stride == 1:
        return "identity"
    return "zero_pad" if option == "A" else "projection"


def _block_cases() -> list[tuple[int, int, int, str]]:
    C = randint(2, 5)
    return [(C, C, 1, "A"), (C, 2 * C, 2, "A"), (C, C, 1, "B"), (C, 2 * C, 2, "B"),
            (C, C, 1, "C"), (C, 2 * C, 2, "C"),
            # a stride without a change of channels, and a change of channels at stride 1:
            # either alone makes the shapes differ
            (C, C, 2, "A"), (C, C, 2, "B"), (C, 2 * C, 1, "A"), (C, 2 * C, 1, "B")]


def check_basic_block(BasicBlock) -> None:
    expect_own_implementation(BasicBlock, "BasicBlock")
    fresh_seed()
    for in_channels, out_channels, stride, option in _block_cases():
        args = f'BasicBlock({in_channels}, {out_channels}, stride={stride}, shortcut="{option}")'
        block = build_module(BasicBlock, "BasicBlock", args,
                             in_channels, out_channels, stride=stride, shortcut=option)
        kind = _shortcut_kind(in_channels, out_channels, stride, option)
        _expect_block_layers(block, args, in_channels, out_channels, stride, kind)
        x = _image(randint(3, 5), in_channels, randint(5, 9), randint(5, 9))
        for training in (True, False):
            copy_ = randomize_(copy.deepcopy(block)).train(training)
            with torch.no_grad():
                expected = _reference_block(copy_, x, in_channels, out_channels, stride, kind,
                                            training, args)
                with quiet():
                    out = copy_(x)
            mode = "train" if training else "eval"
            expect_close(out, expected, f"{args} in {mode} mode: "
                         f"relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut {kind}",
                         atol=ATOL, rtol=RTOL)
    expect_value_error(lambda: BasicBlock(4, 8, stride=2, shortcut="D"),
                       'BasicBlock(4, 8, stride=2, shortcut="D")',
                       'shortcut must be "A", "B" or "C"')


def _expect_block_layers(block, args, in_channels, out_channels, stride, kind) -> None:
    for name in ("conv1", "bn1", "conv2", "bn2", "shortcut"):
        expect(hasattr(block, name), f"{args} needs an attribute {name}", "missing",
               f"block.{name}")
    _expect_conv3x3(block.conv1, "conv1", in_channels, out_channels, stride, args)
    _expect_conv3x3(block.conv2, "conv2", out_channels, out_channels, 1, args)
    _expect_bn(block.bn1, "bn1", out_channels, args)
    _expect_bn(block.bn2, "bn2", out_channels, args)
    main = 9 * in_channels * out_channels + 9 * out_channels ** 2 + 4 * out_channels
    extra = in_channels * out_channels + 2 * out_channels if kind == "projection" else 0
    described = {"identity": "identity shortcut: no extra parameters",
                 "zero_pad": "zero-padding shortcut: no extra parameters",
                 "projection": "projection shortcut: 1x1 conv + BatchNorm"}[kind]
    expect(count_params(block) == main + extra, f"{args}: number of parameters ({described})",
           count_params(block), main + extra)
    shortcut = block.shortcut
    if kind == "projection":
        expect(isinstance(shortcut, nn.Module), f"{args}: shortcut must be a module",
               type(shortcut).__name__, "a projection (1x1 conv + BatchNorm)")
        projection_parts(shortcut, in_channels, out_channels, stride, f"{args}.shortcut")
    elif kind == "zero_pad":
        expect(callable(shortcut), f"{args}: shortcut must be callable",
               type(shortcut).__name__, "a ZeroPadShortcut")


def _reference_shortcut(block, x, in_channels, out_channels, stride, kind, training, args):
    """The shortcut's output the reference adds (BasicBlock and Bottleneck alike): x itself,
    the student's zero-padding checked for where it pads, or the projection recomputed from the
    shortcut's own parameters. (N, C_in, H, W) -> (N, C_out, H', W')."""
    if kind == "identity":
        skip = x
    elif kind == "zero_pad":
        with quiet():
            skip = block.shortcut(x)
        zero_pad_offset(skip, x, stride, f"{args}: the zero-padding shortcut's output")
        expect(skip.shape[1] == out_channels, f"{args}: channels of the shortcut's output "
               "(it must match the main path's to be added)", skip.shape[1], out_channels)
    else:
        conv, bn = projection_parts(block.shortcut, in_channels, out_channels, stride,
                                    f"{args}.shortcut")
        skip = reference_projection(x, conv, bn, stride, training)
    return skip


def _reference_block(block, x, in_channels, out_channels, stride, kind, training, args):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) from the block's own parameters."""
    # (N, C_in, H, W) -> (N, C_out, H', W'): only conv1 (and the shortcut) has the stride
    h = F.conv2d(x, block.conv1.weight, stride=stride, padding=1)
    h = F.relu(_reference_bn(h, block.bn1, training))
    h = F.conv2d(h, block.conv2.weight, padding=1)  # (N, C_out, H', W') -> same
    h = _reference_bn(h, block.bn2, training)
    skip = _reference_shortcut(block, x, in_channels, out_channels, stride, kind, training, args)
    return F.relu(h + skip)


# --- Bottleneck (He et al. 2016, sec. 4.1, "deeper bottleneck architectures") ------------------

EXPANSION = 4  # the last 1x1 conv restores 4x the bottleneck width


def _expect_conv(conv: object, name: str, shape: tuple, what: str) -> None:
    """shape: (in, out, kernel, stride, padding) of a conv without bias."""
    expect(isinstance(conv, nn.Conv2d), f"{what}.{name} must be an nn.Conv2d",
           type(conv).__name__, "nn.Conv2d")
    cin, cout, k, stride, padding = shape
    got = (conv.in_channels, conv.out_channels, tuple(conv.kernel_size), tuple(conv.stride),
           _padding(conv), tuple(conv.dilation), conv.groups, conv.bias is not None)
    want = (cin, cout, (k, k), (stride, stride), (padding, padding), (1, 1), 1, False)
    expect(got == want, f"{what}.{name}: (in, out, kernel_size, stride, padding, dilation, "
           "groups, has bias)", got, want)


def _bottleneck_cases() -> list[tuple[int, int, int, str]]:
    w = randint(2, 4)
    return [(EXPANSION * w, w, 1, "A"), (EXPANSION * w, w, 1, "B"),  # shapes match: identity
            (2 * w, w, 1, "A"), (2 * w, w, 1, "B"),  # channels change at stride 1 (stage 1)
            (EXPANSION * w, 2 * w, 2, "A"), (EXPANSION * w, 2 * w, 2, "B"),  # stage transition
            (EXPANSION * w, w, 2, "A"), (EXPANSION * w, w, 2, "B"),  # a stride alone
            (EXPANSION * w, w, 1, "C"), (EXPANSION * w, 2 * w, 2, "C")]


def check_bottleneck(Bottleneck) -> None:
    expect_own_implementation(Bottleneck, "Bottleneck")
    fresh_seed()
    for in_channels, width, stride, option in _bottleneck_cases():
        out_channels = EXPANSION * width
        args = f'Bottleneck({in_channels}, {width}, stride={stride}, shortcut="{option}")'
        try:
            block = build_module(Bottleneck, "Bottleneck", args, in_channels, width,
                                 stride=stride, shortcut=option)
        except CheckFailure:
            raise
        except Exception as error:  # report it instead of a bare traceback
            fail(f"{args} raised an error", f"{type(error).__name__}: {error}",
                 f"a block with {out_channels} output channels")
        kind = _shortcut_kind(in_channels, out_channels, stride, option)
        _expect_bottleneck_layers(block, args, in_channels, width, stride, kind)
        x = _image(randint(3, 5), in_channels, randint(5, 9), randint(5, 9))
        for training in (True, False):
            copy_ = randomize_(copy.deepcopy(block)).train(training)
            with torch.no_grad():
                expected = _reference_bottleneck(copy_, x, in_channels, out_channels, stride,
                                                 kind, training, args)
                out = _forward(copy_, x, f"{args} on input {tuple(x.shape)}")
            mode = "train" if training else "eval"
            expect_close(out, expected, f"{args} in {mode} mode: relu(bn3(conv3(relu(bn2(conv2("
                         f"relu(bn1(conv1(x)))))))) + shortcut(x)), shortcut {kind}",
                         atol=ATOL, rtol=RTOL)
    expect_value_error(lambda: Bottleneck(16, 4, stride=1, shortcut="D"),
                       'Bottleneck(16, 4, stride=1, shortcut="D")',
                       'shortcut must be "A", "B" or "C"')


def _forward(module: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    """The student's forward pass; an error in it becomes a failure that says what happened."""
    try:
        with quiet():
            return module(x)
    except Exception as error:
        fail(f"{what}: the forward pass raised an error", f"{type(error).__name__}: {error}",
             "an output tensor")


def _expect_bottleneck_layers(block, args, in_channels, width, stride, kind) -> None:
    out_channels = EXPANSION * width
    for name in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "shortcut"):
        expect(hasattr(block, name), f"{args} needs an attribute {name}", "missing",
               f"block.{name}")
    _expect_conv(block.conv1, "conv1", (in_channels, width, 1, 1, 0), args)
    _expect_conv(block.conv2, "conv2 (the 3x3 conv carries the stride)",
                 (width, width, 3, stride, 1), args)
    _expect_conv(block.conv3, "conv3", (width, out_channels, 1, 1, 0), args)
    for name, channels in (("bn1", width), ("bn2", width), ("bn3", out_channels)):
        _expect_bn(getattr(block, name), name, channels, args)
    main = in_channels * width + 9 * width * width + width * out_channels + 2 * (
        2 * width + out_channels)
    extra = in_channels * out_channels + 2 * out_channels if kind == "projection" else 0
    expect(count_params(block) == main + extra, f"{args}: number of parameters ({kind} shortcut)",
           count_params(block), main + extra)
    if kind == "projection":
        projection_parts(block.shortcut, in_channels, out_channels, stride, f"{args}.shortcut")
    elif kind == "zero_pad":
        expect(callable(block.shortcut), f"{args}: shortcut must be callable",
               type(block.shortcut).__name__, "a ZeroPadShortcut")


def _reference_bottleneck(block, x, in_channels, out_channels, stride, kind, training, args):
    # (N, C_in, H, W) -> (N, w, H, W) -> (N, w, H', W') -> (N, 4w, H', W')
    h = F.relu(_reference_bn(F.conv2d(x, block.conv1.weight), block.bn1, training))
    h = F.conv2d(h, block.conv2.weight, stride=stride, padding=1)
    h = F.relu(_reference_bn(h, block.bn2, training))
    h = _reference_bn(F.conv2d(h, block.conv3.weight), block.bn3, training)
    skip = _reference_shortcut(block, x, in_channels, out_channels, stride, kind, training, args)
    return F.relu(h + skip)
