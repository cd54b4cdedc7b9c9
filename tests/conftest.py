"""Shared pytest setup: a headless matplotlib backend, one torch thread, and the xdist groups."""

import matplotlib

matplotlib.use("Agg")  # no display: figures are only drawn to memory or files

import torch  # noqa: E402

# One intra-op thread: the tests' tensors are small, and on a shared 2-core machine two threads
# that wait for each other made the training tests about ten times slower than one thread.
torch.set_num_threads(1)

# which tests share an xdist worker under `-n auto --dist loadgroup`: see tests/xdist_groups.py
from xdist_groups import pytest_collection_modifyitems  # noqa: E402, F401
