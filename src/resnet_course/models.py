"""Plain and residual networks, from small MLPs to the ResNets of He et al. (2016).

Everything uses explicit channel counts (no lazy layers), so a model's parameters exist as soon as
it is built and ``count_parameters`` works before any forward pass.

Shortcut options (He et al., section 4.1):

* ``"A"`` - identity where shapes match; where they do not, subsample and pad the extra channels
  with zeros (``ZeroPadShortcut``). Adds no parameters.
* ``"B"`` - identity where shapes match; a 1x1 projection (``ProjectionShortcut``) where they
  do not.
* ``"C"`` - a projection on every block.

``residual=False`` builds the *plain twin*: the same convolution and BatchNorm layers with no
shortcut and no addition. Under option A the two twins have the same number of parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.validate import ints_at_least, is_int

SHORTCUT_OPTIONS = ("A", "B", "C")


# ----------------------------------------------------------------------------------------------
# Argument checks (integers: resnet_course.validate; each is a ValueError saying what was wrong)
# ----------------------------------------------------------------------------------------------
def _check_shortcut(shortcut: object) -> str:
    option = shortcut.upper() if isinstance(shortcut, str) else shortcut
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut must be 'A', 'B' or 'C'; got {shortcut!r}")
    return option


# ----------------------------------------------------------------------------------------------
# Multilayer perceptrons
# ----------------------------------------------------------------------------------------------
@ints_at_least(in_features=1, width=1, depth=1, num_classes=1)
def plain_mlp(
    in_features: int, width: int, depth: int, num_classes: int
) -> nn.Sequential:
    """``depth`` Linear layers in all, a ReLU after every Linear but the last.

    depth=1 is a linear classifier; depth=3 is
    in -> width -> width -> num_classes.
    """
    if depth == 1:
        return nn.Sequential(nn.Linear(in_features, num_classes))
    # (N, in) -> (N, width)
    layers: list[nn.Module] = [nn.Linear(in_features, width), nn.ReLU()]
    for _ in range(depth - 2):
        # (N, width) -> (N, width)
        layers += [nn.Linear(width, width), nn.ReLU()]
    # (N, width) -> (N, num_classes) logits
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """Two Linear layers and an identity shortcut.

    ``forward(a) = relu(linear2(relu(linear1(a))) + a)``
    """

    @ints_at_least(features=1)
    def __init__(self, features: int):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        # (N, features) -> (N, features): the shortcut needs equal shapes,
        # hence one width.
        z = self.linear2(F.relu(self.linear1(a)))
        return F.relu(z + a)


@ints_at_least(in_features=1, width=1, num_blocks=0, num_classes=1)
def residual_mlp(in_features: int, width: int, num_blocks: int, num_classes: int) -> nn.Sequential:
    """Linear+ReLU into ``width``, ``num_blocks`` ResidualBlocks, then a Linear to the logits.

    Each block holds two Linear layers, so the network has ``2 * num_blocks + 2`` in all.
    """
    return nn.Sequential(
        nn.Linear(in_features, width),  # (N, in) -> (N, width)
        nn.ReLU(),
        *[ResidualBlock(width) for _ in range(num_blocks)],  # (N, width) -> (N, width)
        nn.Linear(width, num_classes),  # (N, width) -> (N, num_classes)
    )


def zero_init_residual_(block: nn.Module) -> nn.Module:
    """Zero the last layer of a residual branch in place, so ``block``
    starts as (the ReLU of) the identity.

    The layer (weight and bias): ``linear2`` of a ResidualBlock, ``bn2`` of a
    BasicBlock, ``bn3`` of a Bottleneck.
    """
    lasts = {ResidualBlock: "linear2", BasicBlock: "bn2", Bottleneck: "bn3"}
    last = lasts.get(type(block))
    if last is None:
        raise ValueError(
            "zero_init_residual_ expects a ResidualBlock, BasicBlock or "
            f"Bottleneck; got {type(block).__name__}"
        )
    layer = getattr(block, last)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    return block


# ----------------------------------------------------------------------------------------------
# Shortcuts
# ----------------------------------------------------------------------------------------------
class ZeroPadShortcut(nn.Module):
    """Option A: keep every ``stride``-th pixel, then append zero channels
    up to ``out_channels``. No parameters.

    (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride))
    """

    @ints_at_least(in_channels=1, out_channels=1, stride=1)
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                "ZeroPadShortcut can only add channels: "
                f"out_channels={out_channels} < in_channels={in_channels} "
                "(use a ProjectionShortcut, option 'B' or 'C')"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Subsampling matches a 3x3 conv with padding 1 and this stride:
        # ceil(H / stride) rows.
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad lists dimensions from the last:
        # (W_left, W_right, H_top, H_bottom, C_front, C_back)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ProjectionShortcut(nn.Module):
    """Options B and C: a 1x1 convolution (with the block's stride), then
    BatchNorm.

    (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride))
    """

    @ints_at_least(in_channels=1, out_channels=1, stride=1)
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        # no bias: BatchNorm's shift makes it redundant
        self.conv = nn.Conv2d(
            in_channels, out_channels, 1, stride=stride, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def make_shortcut(
    in_channels: int, out_channels: int, stride: int, shortcut: str = "A"
) -> nn.Module:
    """The shortcut a block with these shapes uses under option ``shortcut``
    (see the module's docstring)."""
    option = _check_shortcut(shortcut)
    shapes_match = in_channels == out_channels and stride == 1
    if option == "C":
        return ProjectionShortcut(in_channels, out_channels, stride)
    if shapes_match:
        return nn.Identity()
    if option == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return ProjectionShortcut(in_channels, out_channels, stride)


# ----------------------------------------------------------------------------------------------
# Convolutional blocks
# ----------------------------------------------------------------------------------------------
def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 "same" convolution (padding 1); no bias: BatchNorm's shift makes
    it redundant."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=1, bias=False
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut:
    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    (N, C_in, H, W) -> (N, C_out, H/stride, W/stride). With
    ``residual=False`` the block is plain: the same conv/BN layers, no
    shortcut (``self.shortcut is None``) and no addition.
    """

    expansion = 1

    @ints_at_least(in_channels=1, out_channels=1, stride=1)
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "A",
        residual: bool = True,
    ):
        super().__init__()
        option = _check_shortcut(shortcut)
        self.residual = bool(residual)
        # (N, C_in, H, W) -> (N, C_out, H/s, W/s)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)  # shape kept
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None  # plain: no shortcut
        if self.residual:
            self.shortcut = make_shortcut(
                in_channels, out_channels, stride, option
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(nn.Module):
    """1x1 (reduce to ``mid_channels``), 3x3 (with the stride), 1x1 (expand
    to ``4 * mid_channels``).

    (N, C_in, H, W) -> (N, 4 * mid, H/stride, W/stride). The stride sits on
    the 3x3 convolution, as in torchvision ("ResNet v1.5"); parameter counts
    do not depend on where it sits.
    """

    expansion = 4

    @ints_at_least(in_channels=1, mid_channels=1, stride=1)
    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        stride: int = 1,
        shortcut: str = "B",
        residual: bool = True,
    ):
        super().__init__()
        option = _check_shortcut(shortcut)
        out_channels = mid_channels * self.expansion
        self.residual = bool(residual)
        # (N, C_in, H, W) -> (N, mid, H, W)
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        # -> (N, mid, H/s, W/s)
        self.conv2 = conv3x3(mid_channels, mid_channels, stride)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        # -> (N, 4 mid, H/s, W/s)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = None  # plain: no shortcut
        if self.residual:
            self.shortcut = make_shortcut(
                in_channels, out_channels, stride, option
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + self.shortcut(x)
        return F.relu(out)


# ----------------------------------------------------------------------------------------------
# Whole networks
# ----------------------------------------------------------------------------------------------
@ints_at_least(num_blocks=1)
def make_stage(
    block: type[BasicBlock] | type[Bottleneck],
    in_channels: int,
    channels: int,
    num_blocks: int,
    stride: int,
    shortcut: str,
    residual: bool,
) -> tuple[nn.Sequential, int]:
    """``num_blocks`` blocks; only the first changes shape (stride, channels). Returns the stage
    and its output channel count (``channels * block.expansion``)."""
    blocks = []
    for i in range(num_blocks):
        blocks.append(block(in_channels, channels, stride if i == 0 else 1, shortcut, residual))
        in_channels = channels * block.expansion
    return nn.Sequential(*blocks), in_channels


class ResNet(nn.Module):
    """stem -> stages -> global average pool -> Linear. ``stages[i]`` is stage i+1."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, num_features: int, num_classes: int):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.pool = nn.AdaptiveAvgPool2d(1)  # (N, C, H, W) -> (N, C, 1, 1)
        self.fc = nn.Linear(num_features, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (N, C_in, H, W) -> (N, C_last, H', W')
        x = torch.flatten(self.pool(x), 1)  # -> (N, C_last)
        return self.fc(x)  # -> (N, num_classes) logits


def _init_weights(model: nn.Module) -> None:
    # He (Kaiming) initialisation for convolutions, as in He et al. (2015) and torchvision;
    # BatchNorm starts as the identity (scale 1, shift 0). Linear layers keep PyTorch's default.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@ints_at_least(num_classes=1, in_channels=1)
def resnet_cifar(
    depth: int,
    num_classes: int = 10,
    shortcut: str = "A",
    residual: bool = True,
    in_channels: int = 3,
) -> ResNet:
    """He et al.'s CIFAR-10 networks: ``depth = 6n + 2`` (ResNet-20, 32, 44,
    56, 110).

    (N, in_channels, 32, 32) -> stem (N, 16, 32, 32)
    -> stage 1 (N, 16, 32, 32) -> stage 2 (N, 32, 16, 16)
    -> stage 3 (N, 64, 8, 8) -> pool (N, 64) -> fc (N, num_classes).
    Other input sizes work too (every stride-2 stage halves H and W,
    rounding up).
    """
    if not is_int(depth) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"depth must be 6n+2, e.g. 20, 32, 44, 56, 110; got {depth!r}"
        )
    option = _check_shortcut(shortcut)
    # blocks per stage: 2 conv layers each, plus the stem conv and the fc
    n = (depth - 2) // 6
    stem = nn.Sequential(
        conv3x3(in_channels, 16), nn.BatchNorm2d(16), nn.ReLU()
    )
    stages, channels = [], 16
    for width, stride in [(16, 1), (32, 2), (64, 2)]:
        stage, channels = make_stage(
            BasicBlock, channels, width, n, stride, option, residual
        )
        stages.append(stage)
    return ResNet(stem, nn.Sequential(*stages), channels, num_classes)


@ints_at_least(num_classes=1, in_channels=1)
def _resnet_imagenet(
    block: type[BasicBlock] | type[Bottleneck],
    blocks_per_stage: list[int],
    num_classes: int,
    shortcut: str,
    residual: bool,
    in_channels: int,
) -> ResNet:
    option = _check_shortcut(shortcut)
    # (N, 3, 224, 224) -> 7x7/2 conv (N, 64, 112, 112) -> 3x3/2 max pool (N, 64, 56, 56)
    stem = nn.Sequential(
        nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
    )
    stages, channels = [], 64
    # stage widths 64/128/256/512 at 56/28/14/7 pixels for a 224-pixel input
    widths, strides = [64, 128, 256, 512], [1, 2, 2, 2]
    for width, stride, num_blocks in zip(widths, strides, blocks_per_stage, strict=True):
        stage, channels = make_stage(block, channels, width, num_blocks, stride, option, residual)
        stages.append(stage)
    return ResNet(stem, nn.Sequential(*stages), channels, num_classes)


def resnet18(
    num_classes: int = 1000, shortcut: str = "B", residual: bool = True, in_channels: int = 3
) -> ResNet:
    """ImageNet ResNet-18 (BasicBlocks 2-2-2-2); 11,689,512 parameters (1000 classes, B)."""
    return _resnet_imagenet(BasicBlock, [2, 2, 2, 2], num_classes, shortcut, residual, in_channels)


def resnet34(
    num_classes: int = 1000, shortcut: str = "B", residual: bool = True, in_channels: int = 3
) -> ResNet:
    """ImageNet ResNet-34 (BasicBlocks 3-4-6-3); 21,797,672 parameters (1000 classes, B)."""
    return _resnet_imagenet(BasicBlock, [3, 4, 6, 3], num_classes, shortcut, residual, in_channels)


def resnet50(
    num_classes: int = 1000, shortcut: str = "B", residual: bool = True, in_channels: int = 3
) -> ResNet:
    """ImageNet ResNet-50 (Bottlenecks 3-4-6-3); 25,557,032 parameters (1000 classes, B)."""
    return _resnet_imagenet(Bottleneck, [3, 4, 6, 3], num_classes, shortcut, residual, in_channels)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (only those with ``requires_grad`` unless told otherwise)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
