"""resnet_course: the shared library of the course module "Deep Residual Learning".

Submodules (one concern each): ``data`` (spirals, digits, CIFAR-10, loaders), ``models`` (plain
and residual MLPs and ResNets), ``train`` (fit, train_one_epoch, evaluate, History), ``plotting``
(the chapters' figures; imports matplotlib, so it is not imported here) and ``bench``.
"""

from . import data, models, train

__all__ = ["data", "models", "train"]
__version__ = "0.1.0"
