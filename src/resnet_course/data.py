"""Data sets for the course: synthetic spirals, scikit-learn's digits, and CIFAR-10.

Nothing here downloads anything unless asked: ``spirals`` is generated, ``digits`` ships inside
scikit-learn, and ``cifar10`` reads the official python batches from disk, fetching the official
archive only with ``download=True`` (and verifying its md5 and each batch's md5).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from resnet_course.validate import check_int, is_int, is_real


# ----------------------------------------------------------------------------------------------
# Synthetic spirals
# ----------------------------------------------------------------------------------------------
def spirals(
    n_per_class: int = 200, num_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved 2-D spirals, one arm per class (a classic that a linear model cannot separate).

    Returns X (N, 2) float32 and y (N,) int64 with N = n_per_class * num_classes, grouped by class.
    ``noise`` is the standard deviation of the Gaussian jitter added to each point's angle.
    """
    check_int("n_per_class", n_per_class, minimum=1)
    check_int("num_classes", num_classes, minimum=2)
    if not (is_real(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0; got {noise!r}")
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)  # (n,) from the centre outwards
    X, y = [], []
    for k in range(num_classes):
        # each arm sweeps 4 radians, starting 2*pi/num_classes after the previous arm
        start = 2 * math.pi * k / num_classes
        angle = start + 4.0 * radius + noise * rng.standard_normal(n_per_class)  # (n,)
        X.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))  # (n, 2)
        y.append(np.full(n_per_class, k))
    X = torch.as_tensor(np.concatenate(X), dtype=torch.float32)  # (N, 2)
    y = torch.as_tensor(np.concatenate(y), dtype=torch.int64)  # (N,)
    return X, y


# ----------------------------------------------------------------------------------------------
# Handwritten digits (scikit-learn's bundled copy of the UCI 8x8 digits: no download)
# ----------------------------------------------------------------------------------------------
def digits(
    size: int = 8, channels: int = 1, val_fraction: float = 0.2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """1,797 real 8x8 handwritten digits (10 classes) as image tensors, split into train/val.

    Returns X_train, y_train, X_val, y_val; X is (N, channels, size, size) float32, y is (N,)
    int64. Images are upscaled bilinearly when ``size`` is 16 or 32, repeated to 3 channels when
    ``channels=3`` (so CIFAR-style networks apply unchanged), and standardized with the training
    split's mean and standard deviation. The split is stratified by class and seeded.
    ``val_fraction=0`` puts every image in the training split (the val tensors are then empty).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not is_int(size) or size not in (8, 16, 32):
        raise ValueError(f"size must be 8, 16 or 32 pixels; got {size!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (repeated, RGB-like); got {channels!r}")
    if not (is_real(val_fraction) and 0 <= val_fraction < 1):
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction!r}")

    bunch = load_digits()
    X = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1)  # (1797, 1, 8, 8), 0..16
    y = torch.as_tensor(bunch.target, dtype=torch.int64)  # (1797,)
    if size != 8:
        # (N, 1, 8, 8) -> (N, 1, size, size)
        X = F.interpolate(X, size=(size, size), mode="bilinear", align_corners=False)

    indices = np.arange(len(y))
    if val_fraction > 0:
        train_idx, val_idx = train_test_split(
            indices, test_size=val_fraction, stratify=y.numpy(), random_state=seed
        )
    else:
        train_idx = np.random.default_rng(seed).permutation(indices)
        val_idx = indices[:0]
    train_idx, val_idx = torch.as_tensor(train_idx), torch.as_tensor(val_idx)

    # statistics from the training split only, so nothing about the val images leaks into training
    mean, std = X[train_idx].mean(), X[train_idx].std()
    X = (X - mean) / std
    X = X.repeat(1, channels, 1, 1)  # (N, 1, s, s) -> (N, channels, s, s)
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


# ----------------------------------------------------------------------------------------------
# CIFAR-10 (official python version, https://www.cs.toronto.edu/~kriz/cifar.html)
# ----------------------------------------------------------------------------------------------
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)
# md5 of each extracted file (the same values torchvision checks)
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex md5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_md5(path: Path, expected: str | None) -> None:
    if expected is None:
        raise ValueError(f"no md5 checksum known for {path.name}; pass it in `checksums`")
    actual = md5sum(path)
    if actual != expected:
        raise ValueError(
            f"checksum mismatch for {path}: md5 is {actual}, expected {expected}. The file is "
            f"corrupt or not the official CIFAR-10 file; delete it and download it again."
        )


def _download_cifar10(root: Path, checksums: Mapping[str, str]) -> None:
    """Fetch the official archive into ``root``, check its md5, extract it (no partial files)."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / CIFAR10_ARCHIVE
    if not archive.exists():
        with tempfile.NamedTemporaryFile(dir=root, suffix=".part", delete=False) as tmp:
            with urllib.request.urlopen(CIFAR10_URL, timeout=60) as response:
                shutil.copyfileobj(response, tmp)
        os.replace(tmp.name, archive)
    try:
        _verify_md5(archive, checksums.get(CIFAR10_ARCHIVE, CIFAR10_ARCHIVE_MD5))
    except ValueError:
        archive.unlink()  # a bad archive must not be picked up by the next call
        raise
    with tarfile.open(archive, "r:gz") as tar:
        # the "data" filter refuses absolute paths, links out of root and device files
        tar.extractall(root, filter="data")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # Only files whose md5 was verified reach here: unpickling is safe for the official batches.
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (a dict with b'data', b'labels')")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: b'data' must be uint8 (N, 3072); got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: b'labels' must be {len(data)} integers in 0..9")
    return data, labels


def cifar10(
    root: str | os.PathLike,
    train: bool = True,
    download: bool = False,
    checksums: Mapping[str, str] | None = None,
    verify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from ``root/cifar-10-batches-py``: the 50,000 training or 10,000 test images.

    Returns X (N, 3, 32, 32) float32 in [0, 1] and y (N,) int64. With ``download=True`` and files
    missing, fetches the official archive (about 163 MB) into ``root`` and extracts it.
    Every file read is checked against ``checksums`` (file name -> md5; default: the official
    values in ``CIFAR10_MD5``) unless ``verify=False``.
    """
    root = Path(root).expanduser()
    checksums = CIFAR10_MD5 if checksums is None else checksums
    folder = root / CIFAR10_FOLDER
    names = CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES
    missing = [name for name in names if not (folder / name).is_file()]
    if missing and download:
        _download_cifar10(root, checksums)
        missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {folder / missing[0]} is missing. Call "
            f"cifar10({str(root)!r}, download=True) to download the official archive "
            f"(about 163 MB) from {CIFAR10_URL}, or extract {CIFAR10_ARCHIVE} into {root}."
        )

    data, labels = [], []
    for name in names:
        if verify:
            _verify_md5(folder / name, checksums.get(name))
        batch_data, batch_labels = _read_batch(folder / name)
        data.append(batch_data)
        labels.append(batch_labels)
    # (N, 3072) uint8, stored as 1024 red, 1024 green, 1024 blue values row by row
    X = torch.from_numpy(np.concatenate(data)).view(-1, 3, 32, 32)  # -> (N, 3, 32, 32)
    X = X.to(torch.float32).div_(255.0)  # [0, 255] -> [0, 1]
    y = torch.from_numpy(np.concatenate(labels))  # (N,) int64
    return X, y


def random_crop_flip(
    X: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """He et al.'s CIFAR augmentation on a batch: pad by ``padding`` with zeros, take a random
    crop of the original size, flip left-right with probability 1/2. (N, C, H, W) -> same shape.
    """
    if X.ndim != 4:
        raise ValueError(f"X must be a batch of images (N, C, H, W); got shape {tuple(X.shape)}")
    N, _, H, W = X.shape
    padded = F.pad(X, (padding, padding, padding, padding))  # (N, C, H+2p, W+2p)
    device = X.device
    dy = torch.randint(0, 2 * padding + 1, (N,), generator=generator).to(device)
    dx = torch.randint(0, 2 * padding + 1, (N,), generator=generator).to(device)
    flip = (torch.rand(N, generator=generator) < 0.5).to(device)
    rows = dy[:, None] + torch.arange(H, device=device)  # (N, H) rows to keep per image
    cols = dx[:, None] + torch.arange(W, device=device)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # reversed columns = horizontal flip
    n = torch.arange(N, device=device)[:, None, None]
    # advanced indexing: (N, 1, 1), (N, H, 1), (N, 1, W) -> (N, H, W, C) -> (N, C, H, W)
    return padded.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------
def make_loader(
    X: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = True, seed: int = 0
) -> DataLoader:
    """A DataLoader over in-memory tensors; shuffling uses its own seeded generator, so the batch
    order is reproducible and does not depend on (or disturb) the global random state."""
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length; got {len(X)} and {len(y)}")
    check_int("batch_size", batch_size)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator
    )
