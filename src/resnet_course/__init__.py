"""resnet_course: the shared library of the course module "Deep Residual Learning".

Submodules (one concern each): ``data`` (spirals, digits, CIFAR-10, loaders), ``models`` (plain
and residual MLPs and ResNets), ``train`` (fit, train_one_epoch, evaluate, History), ``device``
(pick_device, bf16_is_fast, synchronize), ``validate`` (the argument checks), ``plotting`` (the
chapters' figures; imports matplotlib, so it is not imported here), ``bench`` (naive vs fast
throughput) and ``train_cifar`` (the paper's CIFAR-10 recipe, ``TrainConfig``). The chapters'
experiments: ``mlp_experiments`` (the MLPs on the spirals of "The degradation problem" and "Why
the identity is easy"), ``image_experiments`` (ResNets on the digits), ``preact`` and ``probes``
(measurements inside networks), ``lesions`` (blocks deleted or swapped in trained ResNets, scored
after BatchNorm statistics are re-estimated), ``landscape`` (loss along lines and planes in
parameter space).
"""

from . import data, models, train

__all__ = ["data", "models", "train"]
__version__ = "0.1.0"
