"""Plausible wrong and alternative correct answers for ex3_shortcuts (see variants_ex1.py)."""

# The solution's BasicBlock, with one marked line replaced, gives most wrong BasicBlock variants.
_BLOCK = '''
class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError("bad shortcut option")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=STRIDE1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=STRIDE2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        match = stride == 1 and in_channels == out_channels
        if SHORTCUT_RULE:
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif match:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        FORWARD_END
'''
_GOOD = {
    "STRIDE1": "stride",
    "STRIDE2": "1",
    "SHORTCUT_RULE": 'shortcut == "C" or (shortcut == "B" and not match)',
    "FORWARD_END": "return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))",
}


def _block(**changes: str) -> str:
    source = _BLOCK
    for key, value in {**_GOOD, **changes}.items():
        source = source.replace(key, value)
    return source


WRONG = {
    "ZeroPadShortcut": {
        "no_subsampling": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.extra = out_channels - in_channels

    def forward(self, x):
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))
''',
        # subsamples only when there are channels to add
        "skips_when_channels_match": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x):
        if self.extra == 0:
            return x  # nothing to pad
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
''',
        "pads_spatially": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (self.extra // 2, self.extra - self.extra // 2))  # pads the width
''',
        "has_parameters": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:in_channels, :, 0, 0] = torch.eye(in_channels)

    def forward(self, x):
        return self.conv(x)
''',
        "average_pooling": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        x = F.avg_pool2d(x, self.stride, ceil_mode=True)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))
''',
        "pads_with_copies": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("out_channels < in_channels")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return torch.cat([x, x[:, :self.extra]], dim=1)
''',
        "library_alias": '''
from resnet_course.models import ZeroPadShortcut
''',
        "no_value_error": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.extra = max(out_channels - in_channels, 0)
        self.stride = stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))
''',
    },
    "ProjectionShortcut": {
        # strides only where the channels change too
        "stride_only_with_new_channels": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        stride = stride if out_channels != in_channels else 1
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))
''',
        "with_bias": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))
''',
        "without_batchnorm": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x):
        return self.conv(x)
''',
        "conv3x3": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))
''',
        "batchnorm_first": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x):
        return self.conv(self.bn(x))
''',
        "relu_after_bn": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))
''',
    },
    "BasicBlock": {
        "bn_after_addition": _block(FORWARD_END=(
            "return F.relu(self.bn2(self.conv2(out) + self.shortcut(x)))")),
        "stride_on_second_conv": _block(STRIDE1="1", STRIDE2="stride"),
        "option_a_projects": _block(SHORTCUT_RULE='shortcut == "C" or not match'),
        "no_relu_after_addition": _block(FORWARD_END=(
            "return self.bn2(self.conv2(out)) + self.shortcut(x)")),
        "b_projects_when_shapes_match": _block(SHORTCUT_RULE='shortcut in ("B", "C")'),
        "c_never_projects_on_match": _block(SHORTCUT_RULE='shortcut != "A" and not match'),
        "relu_before_addition": _block(FORWARD_END=(
            "return F.relu(self.bn2(self.conv2(out))) + self.shortcut(x)")),
        "no_value_error": _block().replace('raise ValueError("bad shortcut option")', "pass"),
        # an identity shortcut whenever the channels match, whatever the stride (or the reverse)
        "identity_when_channels_match": _block().replace(
            "match = stride == 1 and in_channels == out_channels",
            "match = in_channels == out_channels"),
        "identity_when_stride_1": _block().replace(
            "match = stride == 1 and in_channels == out_channels", "match = stride == 1"),
        "library_block": '''
from resnet_course import models


def BasicBlock(in_channels, out_channels, stride=1, shortcut="A"):
    return models.BasicBlock(in_channels, out_channels, stride=stride, shortcut=shortcut)
''',
    },
}

# Bottleneck: the solution's block with one marked part replaced
_BOTTLENECK = '''
class Bottleneck(nn.Module):
    def __init__(self, in_channels, width, stride=1, shortcut="B"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError("bad shortcut option")
        out_channels = EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, stride=S1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=S2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        match = MATCH
        if shortcut == "C" or (shortcut == "B" and not match):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif match:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        END
'''
_BOTTLENECK_OK = {"EXPANSION": "4 * width", "S1": "1", "S2": "stride",
                  "MATCH": "stride == 1 and in_channels == out_channels",
                  "END": "return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))"}


def _bottleneck(**changes: str) -> str:
    source = _BOTTLENECK
    for key, value in {**_BOTTLENECK_OK, **changes}.items():
        source = source.replace(key, value)
    return source


WRONG["Bottleneck"] = {
    "stride_on_first_1x1": _bottleneck(S1="stride", S2="1"),  # the paper's v1, not the spec
    "no_expansion": _bottleneck(EXPANSION="width"),
    "identity_when_stride_1": _bottleneck(MATCH="stride == 1"),  # 64 -> 256 needs a shortcut
    "relu_before_addition": _bottleneck(
        END="return F.relu(self.bn3(self.conv3(out))) + self.shortcut(x)"),
    "no_value_error": _bottleneck().replace('raise ValueError("bad shortcut option")', "pass"),
    # a stride without a change of channels gets the identity
    "identity_when_channels_match": _bottleneck(MATCH="in_channels == out_channels"),
}

CORRECT = {
    "cat_and_sequential": {
        "Bottleneck": '''
def conv_bn(in_channels, out_channels, kernel_size, stride=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding="same" if stride == 1 else kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels))


class Bottleneck(nn.Module):
    def __init__(self, in_channels, width, stride=1, shortcut="B"):
        super().__init__()
        out_channels = 4 * width
        same = stride == 1 and in_channels == out_channels
        choices = {"A": None if same else ZeroPadShortcut,
                   "B": None if same else ProjectionShortcut,
                   "C": ProjectionShortcut}
        if shortcut not in choices:
            raise ValueError(f"unknown shortcut {shortcut!r}")
        make = choices[shortcut]
        self.shortcut = (nn.Sequential() if make is None
                         else make(in_channels, out_channels, stride))  # registered first
        reduce, spatial, expand = (conv_bn(in_channels, width, 1),
                                   conv_bn(width, width, 3, stride),
                                   conv_bn(width, out_channels, 1))
        self.conv1, self.bn1 = reduce
        self.conv2, self.bn2 = spatial
        self.conv3, self.bn3 = expand

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return torch.relu_(out)
''',
        "ZeroPadShortcut": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if in_channels > out_channels:
            raise ValueError("cannot shrink channels with zero padding")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        x = x[..., ::self.stride, ::self.stride]
        N, C, H, W = x.shape
        zeros = torch.zeros(N, self.out_channels - C, H, W, dtype=x.dtype, device=x.device)
        return torch.cat((zeros, x), dim=1)  # zeros BEFORE the input channels
''',
        "ProjectionShortcut": '''
class ProjectionShortcut(nn.Sequential):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 1), stride=(stride, stride),
                      padding=0, bias=False),
            nn.BatchNorm2d(out_channels),
        )
''',
        "BasicBlock": '''
def conv3x3(in_channels, out_channels, stride):
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1,
                     bias=False)


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        same_shape = stride == 1 and in_channels == out_channels
        options = {
            "A": lambda: (nn.Sequential() if same_shape
                          else ZeroPadShortcut(in_channels, out_channels, stride)),
            "B": lambda: (nn.Sequential() if same_shape
                          else ProjectionShortcut(in_channels, out_channels, stride)),
            "C": lambda: ProjectionShortcut(in_channels, out_channels, stride),
        }
        if shortcut not in options:
            raise ValueError(f"unknown shortcut option {shortcut!r}")
        self.shortcut = options[shortcut]()

    def forward(self, x):
        identity = self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)
''',
    },
    "pad_around_and_functional": {
        "Bottleneck": '''
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, width, stride=1, shortcut="B"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError(f"shortcut {shortcut!r} is not one of A, B, C")
        out = self.expansion * width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.conv3 = nn.Conv2d(width, out, kernel_size=1, bias=False)
        self.bn1, self.bn2, self.bn3 = (nn.BatchNorm2d(c) for c in (width, width, out))
        if shortcut == "C" or (shortcut == "B" and (stride, in_channels) != (1, out)):
            self.shortcut = ProjectionShortcut(in_channels, out, stride)
        elif (stride, in_channels) != (1, out):
            self.shortcut = ZeroPadShortcut(in_channels, out, stride)
        else:
            self.shortcut = None

    def forward(self, x):
        h = x
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            h = F.relu(bn(conv(h)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.bn3(self.conv3(h)) + skip)
''',
        "ZeroPadShortcut": '''
import warnings


class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"out_channels ({out_channels}) < in_channels ({in_channels})")
        extra = out_channels - in_channels
        self.before, self.after = extra // 2, extra - extra // 2  # zeros around the input
        self.stride = stride

    def forward(self, x):
        warnings.warn("padding with zeros")  # a warning must not cost points
        x = F.max_pool2d(x, kernel_size=1, stride=self.stride)
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))
''',
        "ProjectionShortcut": '''
class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.stride = stride
        self.weight = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.norm(F.conv2d(x, self.weight.weight, stride=self.stride))
''',
        "BasicBlock": '''
class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        if shortcut not in {"A", "B", "C"}:
            raise ValueError("shortcut must be one of A, B, C")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if shortcut == "C":
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif stride != 1 or in_channels != out_channels:
            make = ZeroPadShortcut if shortcut == "A" else ProjectionShortcut
            self.shortcut = make(in_channels, out_channels, stride)
        else:
            self.shortcut = None  # identity

    def residual(self, x):
        return self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu_(self.residual(x) + skip)
''',
    },
    "same_padding_and_lambda_shortcut": {
        # padding="same" is padding 1 for a 3x3 conv with stride 1; the shortcut is a module
        # wrapping a function (identity or zero padding)
        "BasicBlock": '''
class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError(f"shortcut must be A, B or C, not {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride,
                               padding="same" if stride == 1 else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        extra = out_channels - in_channels
        if shortcut == "C" or (shortcut == "B" and (stride != 1 or extra)):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif stride == 1 and not extra:
            self.shortcut = Lambda(lambda x: x)
        else:
            self.shortcut = Lambda(
                lambda x: F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, extra)))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.shortcut(x) + self.bn2(self.conv2(out)))
''',
    },
    # the shortcut is a plain function (the contract: "a module (or function)"): the identity
    # as a def, zero padding as a functools.partial (BasicBlock) or a lambda (Bottleneck)
    "function_shortcuts": {
        "BasicBlock": '''
import functools


def identity(x):
    return x


def pad_channels(x, stride, extra):
    # (N, C, H, W) -> (N, C + extra, ceil(H / stride), ceil(W / stride))
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, extra))


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError(f"shortcut must be A, B or C, not {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        same = stride == 1 and in_channels == out_channels
        if shortcut == "C" or (shortcut == "B" and not same):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif same:
            self.shortcut = identity
        else:
            self.shortcut = functools.partial(pad_channels, stride=stride,
                                              extra=out_channels - in_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))
''',
        "Bottleneck": '''
class Bottleneck(nn.Module):
    def __init__(self, in_channels, width, stride=1, shortcut="B"):
        super().__init__()
        if shortcut not in ("A", "B", "C"):
            raise ValueError(f"shortcut must be A, B or C, not {shortcut!r}")
        out_channels = 4 * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        same = stride == 1 and in_channels == out_channels
        extra = out_channels - in_channels
        if shortcut == "C" or (shortcut == "B" and not same):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif same:
            self.shortcut = lambda x: x
        else:
            self.shortcut = lambda x: F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, extra))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))
''',
    },
}
