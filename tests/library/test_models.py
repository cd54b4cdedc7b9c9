"""Tests for resnet_course.models: exact parameter counts, shapes, shortcuts, identity at init."""

import math

import pytest
import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from resnet_course.models import (
    BasicBlock,
    Bottleneck,
    ProjectionShortcut,
    ResidualBlock,
    ZeroPadShortcut,
    count_parameters,
    plain_mlp,
    residual_mlp,
    resnet18,
    resnet34,
    resnet50,
    resnet_cifar,
    zero_init_residual_,
)
from resnet_course.train import set_seed

# Published counts (He et al. 2016 CIFAR nets; torchvision's ImageNet models), see DESIGN.md.
CIFAR_COUNTS = [
    (20, "A", 269_722),
    (20, "B", 272_474),
    (32, "A", 464_154),
    (56, "A", 853_018),
    (110, "A", 1_727_962),
]
IMAGENET_COUNTS = [(resnet18, 11_689_512), (resnet34, 21_797_672), (resnet50, 25_557_032)]


def output_shapes(model: nn.Module, X: torch.Tensor, modules: list[nn.Module]) -> list[tuple]:
    """Output shape of each module in ``modules`` during one forward pass (via forward hooks)."""
    shapes = {}
    handles = [
        m.register_forward_hook(lambda mod, inp, out, i=i: shapes.__setitem__(i, tuple(out.shape)))
        for i, m in enumerate(modules)
    ]
    try:
        with torch.no_grad():
            model.eval()(X)
    finally:
        for handle in handles:
            handle.remove()
    return [shapes[i] for i in range(len(modules))]


# ----------------------------------------------------------------------------------------------
# Parameter counts
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("depth", "shortcut", "expected"), CIFAR_COUNTS)
def test_resnet_cifar_parameter_counts(depth, shortcut, expected):
    assert count_parameters(resnet_cifar(depth, shortcut=shortcut)) == expected


@pytest.mark.parametrize(("builder", "expected"), IMAGENET_COUNTS)
def test_imagenet_resnet_parameter_counts(builder, expected):
    assert count_parameters(builder()) == expected


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_option_a_adds_no_parameters_and_twins_match(depth):
    residual = resnet_cifar(depth, shortcut="A")
    plain = resnet_cifar(depth, shortcut="A", residual=False)
    assert count_parameters(residual) == count_parameters(plain)
    assert not any(True for m in residual.modules() if isinstance(m, ProjectionShortcut))
    assert count_parameters(ZeroPadShortcut(16, 32, 2)) == 0


def test_option_b_and_c_add_projections():
    a, b, c = (count_parameters(resnet_cifar(20, shortcut=s)) for s in "ABC")
    # B: projections only at the two stage changes (16->32, 32->64): 1x1 conv + BN each
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert c > b
    # C: one projection in each of the 9 blocks
    modules = resnet_cifar(20, shortcut="C").modules()
    assert sum(isinstance(m, ProjectionShortcut) for m in modules) == 9


def test_imagenet_plain_twin_under_option_a_has_equal_count():
    assert count_parameters(resnet18(shortcut="A")) == count_parameters(
        resnet18(shortcut="A", residual=False)
    )


def test_count_parameters_trainable_only():
    model = plain_mlp(4, 8, 2, 3)  # (4*8 + 8) + (8*3 + 3) = 67
    assert count_parameters(model) == 67
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 67 - 32
    assert count_parameters(model, trainable_only=False) == 67


def test_no_lazy_modules():
    for model in [resnet_cifar(20), resnet50(), residual_mlp(2, 8, 2, 3)]:
        assert not any(isinstance(m, LazyModuleMixin) for m in model.modules())


# ----------------------------------------------------------------------------------------------
# MLPs
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_plain_mlp_structure(depth):
    model = plain_mlp(2, 16, depth, 3)
    assert isinstance(model, nn.Sequential)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(linears) == depth
    assert sum(isinstance(m, nn.ReLU) for m in model) == depth - 1
    assert isinstance(model[-1], nn.Linear)  # logits: no ReLU after the last layer
    assert linears[0].in_features == 2 and linears[-1].out_features == 3
    assert model(torch.randn(7, 2)).shape == (7, 3)


def test_residual_mlp_structure():
    model = residual_mlp(2, 16, 3, 4)
    assert sum(isinstance(m, ResidualBlock) for m in model) == 3
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 2 * 3 + 2
    assert model(torch.randn(5, 2)).shape == (5, 4)


def test_residual_block_forward_formula():
    block = ResidualBlock(6)
    a = torch.randn(4, 6)
    expected = torch.relu(block.linear2(torch.relu(block.linear1(a))) + a)
    assert torch.allclose(block(a), expected)


def test_residual_block_with_zero_last_layer_is_identity():
    block = ResidualBlock(8)
    with torch.no_grad():
        block.linear2.weight.zero_()
        block.linear2.bias.zero_()
    a = torch.rand(10, 8)  # non-negative: relu(a) == a
    assert torch.equal(block(a), a)
    # the library helper does the same
    block = zero_init_residual_(ResidualBlock(8))
    assert torch.equal(block(a), a)


# ----------------------------------------------------------------------------------------------
# Shortcuts and blocks
# ----------------------------------------------------------------------------------------------
def test_zero_pad_shortcut_values():
    x = torch.randn(2, 3, 5, 5)
    out = ZeroPadShortcut(3, 8, stride=2)(x)
    assert out.shape == (2, 8, 3, 3)  # ceil(5 / 2) = 3
    assert torch.equal(out[:, :3], x[:, :, ::2, ::2])
    assert torch.equal(out[:, 3:], torch.zeros(2, 5, 3, 3))


def test_projection_shortcut_layers():
    shortcut = ProjectionShortcut(16, 32, 2)
    assert shortcut.conv.kernel_size == (1, 1) and shortcut.conv.stride == (2, 2)
    assert shortcut.conv.bias is None
    assert isinstance(shortcut.bn, nn.BatchNorm2d)
    assert shortcut(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


@pytest.mark.parametrize(
    ("option", "in_channels", "out_channels", "stride", "kind"),
    [
        ("A", 16, 16, 1, nn.Identity),
        ("A", 16, 32, 2, ZeroPadShortcut),
        ("B", 16, 16, 1, nn.Identity),
        ("B", 16, 32, 2, ProjectionShortcut),
        ("C", 16, 16, 1, ProjectionShortcut),
        ("C", 16, 32, 2, ProjectionShortcut),
    ],
)
def test_basic_block_shortcut_choice_and_shape(option, in_channels, out_channels, stride, kind):
    block = BasicBlock(in_channels, out_channels, stride, shortcut=option)
    assert isinstance(block.shortcut, kind)
    for conv in (block.conv1, block.conv2):
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.bias is None
    out = block(torch.randn(2, in_channels, 8, 8))
    assert out.shape == (2, out_channels, 8 // stride, 8 // stride)


def test_basic_block_forward_formula():
    block = BasicBlock(8, 16, stride=2, shortcut="B").eval()
    x = torch.randn(2, 8, 6, 6)
    branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
    assert torch.allclose(block(x), torch.relu(branch + block.shortcut(x)))


@pytest.mark.parametrize("train_mode", [True, False])
def test_basic_block_with_zeroed_bn2_is_identity(train_mode):
    block = BasicBlock(16, 16)
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    block.train(train_mode)
    x = torch.rand(4, 16, 8, 8)  # non-negative: relu(x) == x
    assert torch.equal(block(x), x)


def test_downsampling_block_with_zero_branch_is_its_shortcut():
    block = zero_init_residual_(BasicBlock(16, 32, stride=2, shortcut="A"))
    x = torch.rand(2, 16, 8, 8)
    assert torch.equal(block(x), ZeroPadShortcut(16, 32, 2)(x))


def test_bottleneck_with_zeroed_bn3_is_identity():
    block = zero_init_residual_(Bottleneck(64, 16))  # 64 -> 16 -> 16 -> 64 channels
    x = torch.rand(2, 64, 6, 6)
    assert torch.equal(block(x), x)


def test_plain_block_has_no_shortcut_and_no_addition():
    block = BasicBlock(16, 16, residual=False)
    assert block.shortcut is None
    zero_init_residual_(block)
    # without the addition a zero branch gives zero, not x
    assert torch.equal(block(torch.rand(2, 16, 4, 4)), torch.zeros(2, 16, 4, 4))


def test_bottleneck_shapes():
    block = Bottleneck(64, 32, stride=2)
    assert block.conv1.kernel_size == (1, 1) and block.conv3.kernel_size == (1, 1)
    assert block.conv2.stride == (2, 2)
    assert isinstance(block.shortcut, ProjectionShortcut)  # 64 -> 128 channels under option B
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)


# ----------------------------------------------------------------------------------------------
# Whole networks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("residual", [True, False])
def test_resnet_cifar_stage_shapes(residual):
    model = resnet_cifar(20, residual=residual)
    assert len(model.stages) == 3 and all(len(stage) == 3 for stage in model.stages)
    X = torch.randn(2, 3, 32, 32)
    shapes = output_shapes(model, X, [model.stem, *model.stages, model.pool])
    assert shapes == [
        (2, 16, 32, 32),
        (2, 16, 32, 32),
        (2, 32, 16, 16),  # stride 2 halves H and W at the start of stage 2
        (2, 64, 8, 8),
        (2, 64, 1, 1),
    ]
    assert model(X).shape == (2, 10)


def test_resnet_cifar_other_inputs():
    model = resnet_cifar(8, num_classes=4, in_channels=1)  # n = 1
    assert model(torch.randn(3, 1, 16, 16)).shape == (3, 4)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 7  # 6n + 1 convs, + fc = 8


def test_resnet18_stage_shapes():
    model = resnet18(num_classes=7)
    X = torch.randn(1, 3, 224, 224)
    shapes = output_shapes(model, X, [model.stem, *model.stages])
    assert shapes == [
        (1, 64, 56, 56),  # 7x7/2 conv then 3x3/2 max pool
        (1, 64, 56, 56),
        (1, 128, 28, 28),
        (1, 256, 14, 14),
        (1, 512, 7, 7),
    ]
    assert model(X).shape == (1, 7)


@pytest.mark.parametrize("builder", [resnet34, resnet50])
def test_imagenet_resnets_run(builder):
    model = builder(num_classes=5)
    X = torch.randn(2, 3, 64, 64)
    shapes = output_shapes(model, X, list(model.stages))
    expansion = 4 if builder is resnet50 else 1
    assert [s[1] for s in shapes] == [expansion * w for w in (64, 128, 256, 512)]
    assert [s[2] for s in shapes] == [16, 8, 4, 2]
    assert model(X).shape == (2, 5)


def test_convolutions_use_kaiming_init():
    set_seed(0)
    conv = resnet_cifar(20).stages[2][1].conv1  # 64 -> 64 channels, 3x3: fan_out = 576
    expected_std = math.sqrt(2 / (64 * 9))
    assert abs(conv.weight.std().item() / expected_std - 1) < 0.05
    bn = resnet_cifar(20).stages[0][0].bn1
    assert torch.equal(bn.weight, torch.ones(16)) and torch.equal(bn.bias, torch.zeros(16))


def test_same_seed_same_initial_weights():
    set_seed(3)
    first = resnet_cifar(20).state_dict()
    set_seed(3)
    second = resnet_cifar(20).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    set_seed(4)
    third = resnet_cifar(20).state_dict()
    assert not torch.equal(first["fc.weight"], third["fc.weight"])


# ----------------------------------------------------------------------------------------------
# Bad arguments
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [21, 19, 2, 0, 20.0])
def test_resnet_cifar_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match=r"depth must be 6n\+2, e\.g\. 20, 32, 44, 56, 110; got"):
        resnet_cifar(depth)


def test_resnet_cifar_bad_depth_message_names_the_value():
    with pytest.raises(ValueError, match="got 21$"):
        resnet_cifar(21)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: resnet_cifar(20, shortcut="D"), "shortcut must be 'A', 'B' or 'C'; got 'D'"),
        (lambda: BasicBlock(16, 32, shortcut="X"), "shortcut must be 'A', 'B' or 'C'"),
        (lambda: plain_mlp(2, 8, 0, 3), r"depth must be an integer >= 1; got 0"),
        (lambda: residual_mlp(2, 8, -1, 3), r"num_blocks must be an integer >= 0; got -1"),
        (lambda: ResidualBlock(0), "features must be an integer >= 1"),
        (lambda: BasicBlock(16, 16, stride=0), "stride must be an integer >= 1; got 0"),
        (lambda: ZeroPadShortcut(32, 16, 1), "ZeroPadShortcut can only add channels"),
        (lambda: BasicBlock(32, 16, shortcut="A"), "ZeroPadShortcut can only add channels"),
        (lambda: resnet18(num_classes=0), "num_classes must be an integer >= 1"),
        (lambda: zero_init_residual_(nn.Linear(2, 2)), "expects a ResidualBlock"),
    ],
)
def test_bad_arguments_raise_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()
