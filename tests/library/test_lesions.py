"""Tests for resnet_course.lesions: lesioned copies, BatchNorm re-estimation, delete-k and swap-k.

Small untrained ``resnet_cifar`` nets on random 8x8 images: what is checked is what a lesion
does to the network and how it is scored, not what a trained network shows (the chapter
"Inside trained ResNets" measures that).
"""

import pytest
import torch
from torch import nn

from resnet_course import lesions
from resnet_course.models import resnet_cifar
from resnet_course.probes import deletable_blocks, deletion_errors


@pytest.fixture(scope="module")
def net_and_data():
    torch.manual_seed(0)
    model = resnet_cifar(20, num_classes=10).eval()
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(48, 3, 8, 8, generator=generator)
    y = torch.randint(0, 10, (48,), generator=generator)
    # give the running statistics values that do not fit X, as after training on other data
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.fill_(0.5)
            module.running_var.fill_(3.0)
    return model, X, y


def test_recalibration_sets_the_statistics_of_the_data_and_changes_no_weight(net_and_data):
    model, X, _ = net_and_data
    net = lesions.lesioned(model)  # a copy
    before = {k: v.clone() for k, v in net.named_parameters()}
    bn = net.stem[1]
    with torch.no_grad():
        stem_out = net.stem[0](X)  # (48, 16, 8, 8): what the first BatchNorm sees
    lesions.recalibrate_batchnorm_(net, X, batch_size=16)  # three batches of 16
    # the cumulative average of three equal-sized batches' means is the mean over all of X
    assert torch.allclose(bn.running_mean, stem_out.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1 and not net.training  # momentum restored, eval mode
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())


def test_lesioned_copies_delete_and_swap_without_touching_the_original(net_and_data):
    model, _, _ = net_and_data
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = lesions.swappable_pairs(model)
    assert pairs == [((0, 0), (0, 1)), ((0, 1), (0, 2)), ((1, 1), (1, 2)), ((2, 1), (2, 2))]
    net = lesions.lesioned(model, delete=[(1, 1)], swap=[((0, 0), (0, 1))])
    assert isinstance(net.stages[1][1], nn.Identity)
    assert torch.equal(net.stages[0][0].conv1.weight, model.stages[0][1].conv1.weight)
    assert torch.equal(net.stages[0][1].conv1.weight, model.stages[0][0].conv1.weight)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not isinstance(model.stages[1][1], nn.Identity)  # still its block
    with pytest.raises(ValueError, match="cannot be deleted"):
        lesions.lesioned(model, delete=[(1, 0)])  # changes the shape: not deletable
    with pytest.raises(ValueError, match="cannot be swapped"):
        lesions.lesioned(model, swap=[((0, 0), (0, 2))])  # not adjacent


def test_without_recalibration_a_lesion_scores_like_the_deletion_probe(net_and_data):
    model, X, y = net_and_data
    stale = lesions.single_deletion_errors(model, X, y, None)
    assert stale == pytest.approx(deletion_errors(model, X, y))
    recal = lesions.single_deletion_errors(model, X, y, X)
    assert len(recal) == len(deletable_blocks(model)) == 7
    # re-estimating on the scored images itself: the same as a lesioned copy recalibrated by hand
    net = lesions.recalibrate_batchnorm_(lesions.lesioned(model, delete=[(0, 0)]), X)
    assert recal[0] == pytest.approx((net(X).argmax(1) != y).float().mean().item())


def test_delete_k_and_swap_k_average_random_lesions(net_and_data):
    model, X, y = net_and_data
    intact = lesions.lesion_error(model, X, y, X)
    deleted = lesions.delete_k_errors(model, X, y, X, ks=[0, 2], num_samples=2)
    assert deleted[0] == pytest.approx(intact)  # deleting nothing is the intact net
    again = lesions.delete_k_errors(model, X, y, X, ks=[0, 2], num_samples=2)
    assert again == deleted  # the default generator is seeded: the same draws
    swapped = lesions.swap_k_errors(model, X, y, X, ks=[0, 1, 3], num_samples=2)
    assert swapped[0] == pytest.approx(intact) and 0 <= swapped[3] <= 1
    with pytest.raises(ValueError, match="k must be"):
        lesions.delete_k_errors(model, X, y, None, ks=[8])
    with pytest.raises(ValueError, match="disjoint pairs"):
        lesions.swap_k_errors(model, X, y, None, ks=[4])  # at most 3 disjoint pairs here
