"""Shared pytest setup: a headless matplotlib backend and a fixed, small torch thread count."""

import matplotlib

matplotlib.use("Agg")  # no display: figures are only drawn to memory or files

import torch  # noqa: E402

# Tests share a small machine; more threads than cores only adds contention.
torch.set_num_threads(2)
