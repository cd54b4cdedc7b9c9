"""Plain, post-activation and pre-activation dense stacks (resnet_course.preact)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_course.preact import KINDS, DenseBlock, blocks_of, dense_stack, he_init_


def _block(kind: str, width: int = 6, seed: int = 0) -> DenseBlock:
    torch.manual_seed(seed)
    block = he_init_(DenseBlock(width, kind))
    with torch.no_grad():  # non-trivial BN affine parameters, so their placement matters
        for bn in (block.bn1, block.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return block.train()


@pytest.mark.parametrize("kind", KINDS)
def test_block_formulas(kind):
    block = _block(kind)
    x = torch.randn(16, 6)
    b = block
    if kind == "plain":
        expected = F.relu(b.bn2(b.linear2(F.relu(b.bn1(b.linear1(x))))))
    elif kind == "post":
        expected = F.relu(b.bn2(b.linear2(F.relu(b.bn1(b.linear1(x))))) + x)
    else:
        expected = x + b.linear2(F.relu(b.bn2(b.linear1(F.relu(b.bn1(x))))))
    torch.testing.assert_close(block(x), expected)


def test_kinds_differ_on_the_same_weights():
    x = torch.randn(16, 6)
    outputs = {kind: _block(kind, seed=3)(x) for kind in KINDS}
    assert not torch.allclose(outputs["post"], outputs["pre"])
    assert not torch.allclose(outputs["post"], outputs["plain"])
    assert (outputs["post"] >= 0).all() and (outputs["pre"] < 0).any()  # no ReLU after the sum


def test_pre_block_with_zero_last_layer_is_exactly_the_identity():
    block = _block("pre")
    with torch.no_grad():
        block.linear2.weight.zero_()
    x = torch.randn(8, 6)
    torch.testing.assert_close(block(x), x)  # negative entries pass: nothing gates the shortcut
    post = _block("post")
    with torch.no_grad():
        post.bn2.weight.zero_()
        post.bn2.bias.zero_()
    torch.testing.assert_close(post(x), F.relu(x))  # the post-activation block still gates


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_blocks", [0, 1, 5])
def test_stack_shapes_and_layer_counts(kind, num_blocks):
    model = dense_stack(kind, 64, 16, num_blocks, 10)
    assert model(torch.randn(4, 64)).shape == (4, 10)
    assert len([m for m in model.modules() if isinstance(m, nn.Linear)]) == 2 * num_blocks + 2
    assert len(blocks_of(model)) == num_blocks
    assert all(b.kind == kind for b in blocks_of(model))


def test_all_kinds_have_the_same_parameters():
    counts = {k: sum(p.numel() for p in dense_stack(k, 64, 16, 4, 10).parameters()) for k in KINDS}
    assert len(set(counts.values())) == 1, counts


def test_pre_stack_ends_with_bn_relu_before_the_head():
    model = dense_stack("pre", 8, 16, 2, 3)
    assert isinstance(model[-3], nn.BatchNorm1d) and isinstance(model[-2], nn.ReLU)
    post = dense_stack("post", 8, 16, 2, 3)
    assert isinstance(post[1], nn.BatchNorm1d) and isinstance(post[-2], DenseBlock)


def test_he_init():
    torch.manual_seed(0)
    model = dense_stack("post", 256, 256, 4, 10)
    weights = torch.cat([b.linear1.weight.flatten() for b in blocks_of(model)])
    assert abs(weights.std().item() - (2 / 256) ** 0.5) < 0.005
    assert all(bn.weight.eq(1).all() and bn.bias.eq(0).all()
               for bn in model.modules() if isinstance(bn, nn.BatchNorm1d))  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("mid", 4, 4, 2, 2), ("post", 0, 4, 2, 2), ("post", 4, 4, -1, 2), ("pre", 4, 4, True, 2),
     ("plain", 4, 2.5, 2, 2)],  # fmt: skip
)
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        dense_stack(*args)


@pytest.mark.parametrize("kind", KINDS)
def test_final_norm_puts_the_same_head_on_every_kind(kind):
    torch.manual_seed(0)
    with_head = dense_stack(kind, 5, 8, 2, 3, final_norm=True)
    assert isinstance(with_head[-3], nn.BatchNorm1d) and isinstance(with_head[-2], nn.ReLU)
    without = dense_stack(kind, 5, 8, 2, 3, final_norm=False)
    assert isinstance(without[-2], DenseBlock)
    default = dense_stack(kind, 5, 8, 2, 3)
    assert isinstance(default[-3], nn.BatchNorm1d) == (kind == "pre")  # as before
    assert with_head(torch.randn(4, 5)).shape == (4, 3)
    with pytest.raises(ValueError, match="final_norm"):
        dense_stack(kind, 5, 8, 2, 3, final_norm="yes")
