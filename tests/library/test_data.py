"""Tests for resnet_course.data. CIFAR-10 is exercised on small fake batches written in the
official format; nothing here touches the network."""

import io
import pickle
import tarfile
import urllib.request

import numpy as np
import pytest
import torch

from resnet_course import data
from resnet_course.data import (
    CIFAR10_FOLDER,
    cifar10,
    digits,
    make_loader,
    md5sum,
    random_crop_flip,
    spirals,
)


# ----------------------------------------------------------------------------------------------
# spirals
# ----------------------------------------------------------------------------------------------
def test_spirals_shapes_and_balance():
    X, y = spirals(n_per_class=50, num_classes=4, noise=0.1, seed=1)
    assert X.shape == (200, 2) and X.dtype == torch.float32
    assert y.shape == (200,) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.full((4,), 50))


def test_spirals_seeded():
    assert all(torch.equal(a, b) for a, b in zip(spirals(seed=5), spirals(seed=5), strict=True))
    assert not torch.equal(spirals(seed=5)[0], spirals(seed=6)[0])


def test_spirals_without_noise_lie_on_the_spiral():
    X, y = spirals(n_per_class=30, num_classes=3, noise=0.0)
    radius = X.norm(dim=1)
    assert torch.allclose(radius[y == 0], torch.linspace(0, 1, 30), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_per_class": 0}, "n_per_class must be an integer >= 1"),
        ({"num_classes": 1}, "num_classes must be an integer >= 2"),
        ({"noise": -0.1}, "noise must be a finite number >= 0"),
    ],
)
def test_spirals_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spirals(**kwargs)


# ----------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "channels"), [(8, 1), (16, 3), (32, 1)])
def test_digits_shapes(size, channels):
    X_train, y_train, X_val, y_val = digits(size=size, channels=channels, val_fraction=0.25)
    assert X_train.shape[1:] == (channels, size, size) and X_train.dtype == torch.float32
    assert y_train.dtype == torch.int64
    assert len(X_train) + len(X_val) == 1797
    assert len(X_val) == pytest.approx(0.25 * 1797, abs=1)
    assert len(X_train) == len(y_train) and len(X_val) == len(y_val)


def test_digits_standardized_and_stratified():
    X_train, y_train, X_val, y_val = digits(size=16, channels=3)
    assert abs(X_train.mean().item()) < 1e-4
    assert abs(X_train.std().item() - 1) < 1e-3
    assert torch.equal(X_train[:, 0], X_train[:, 2])  # channels repeat the grey image
    # stratified: every class has (about) the same share in both splits
    share_train = torch.bincount(y_train, minlength=10) / len(y_train)
    share_val = torch.bincount(y_val, minlength=10) / len(y_val)
    assert (share_train - share_val).abs().max() < 0.01


def test_digits_seeded_split():
    first, second, other = digits(seed=1), digits(seed=1), digits(seed=2)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[1], other[1])


def test_digits_without_validation_split():
    X_train, y_train, X_val, y_val = digits(val_fraction=0)
    assert len(X_train) == 1797 and X_val.shape == (0, 1, 8, 8) and len(y_val) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 12}, "size must be 8, 16 or 32"),
        ({"channels": 2}, "channels must be 1"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
    ],
)
def test_digits_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        digits(**kwargs)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 on fake batches in the official format
# ----------------------------------------------------------------------------------------------
FAKE_PER_BATCH = 4


def write_fake_cifar(root, seed=0):
    """Write data_batch_1..5 and test_batch (FAKE_PER_BATCH images each) as the official pickled
    dicts; return the raw uint8 data, labels and the md5 of every file."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    raw, checksums = {}, {}
    for name in [*data.CIFAR10_TRAIN_FILES, *data.CIFAR10_TEST_FILES]:
        pixels = rng.integers(0, 256, size=(FAKE_PER_BATCH, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=FAKE_PER_BATCH).tolist()  # a list, as in the originals
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": pixels}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        raw[name] = (pixels, labels)
        checksums[name] = md5sum(folder / name)
    return raw, checksums


def test_cifar10_reads_official_format(tmp_path):
    raw, checksums = write_fake_cifar(tmp_path)
    X, y = cifar10(tmp_path, train=True, checksums=checksums)
    assert X.shape == (5 * FAKE_PER_BATCH, 3, 32, 32) and X.dtype == torch.float32
    assert y.dtype == torch.int64
    pixels, labels = raw["data_batch_2"]
    # image 1 of batch 2; each row is 1024 red, then green, then blue values, row-major
    n, c, h, w = FAKE_PER_BATCH + 1, 2, 5, 7
    assert X[n, c, h, w].item() == pytest.approx(pixels[1, c * 1024 + h * 32 + w] / 255)
    assert y[n].item() == labels[1]
    assert 0 <= X.min() and X.max() <= 1

    X_test, y_test = cifar10(tmp_path, train=False, checksums=checksums)
    pixels, labels = raw["test_batch"]
    assert torch.equal(X_test, torch.from_numpy(pixels).view(-1, 3, 32, 32).float() / 255)
    assert y_test.tolist() == labels


def test_cifar10_refuses_wrong_checksum(tmp_path):
    _, checksums = write_fake_cifar(tmp_path)
    checksums["data_batch_3"] = "0" * 32
    with pytest.raises(ValueError, match="checksum mismatch for .*data_batch_3"):
        cifar10(tmp_path, checksums=checksums)
    # the default table holds the official md5s, which fake files cannot match
    with pytest.raises(ValueError, match="checksum mismatch"):
        cifar10(tmp_path, train=False)
    # and verification can be switched off explicitly
    assert len(cifar10(tmp_path, train=False, verify=False)[0]) == FAKE_PER_BATCH


def test_cifar10_refuses_a_malformed_batch(tmp_path):
    _, checksums = write_fake_cifar(tmp_path)
    path = tmp_path / CIFAR10_FOLDER / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"must be uint8 \(N, 3072\)"):
        cifar10(tmp_path, train=False, verify=False)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_cifar10_missing_files_without_download(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1 is missing.*download=True"):
        cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_batch is missing"):
        cifar10(tmp_path / "nowhere", train=False)


def fake_archive(tmp_path) -> tuple[bytes, dict]:
    """A tar.gz of fake batches laid out like cifar-10-python.tar.gz, and the md5s to expect."""
    source = tmp_path / "source"
    _, checksums = write_fake_cifar(source)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / CIFAR10_FOLDER, arcname=CIFAR10_FOLDER)
    archive = buffer.getvalue()
    (tmp_path / "archive").write_bytes(archive)
    checksums[data.CIFAR10_ARCHIVE] = md5sum(tmp_path / "archive")
    return archive, checksums


def test_cifar10_download_verifies_and_extracts(tmp_path, monkeypatch):
    archive, checksums = fake_archive(tmp_path)
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return io.BytesIO(archive)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "root"
    X, y = cifar10(root, train=False, download=True, checksums=checksums)
    assert urls == [data.CIFAR10_URL]
    assert X.shape == (FAKE_PER_BATCH, 3, 32, 32)
    # files present now: no second download
    cifar10(root, train=True, download=True, checksums=checksums)
    assert len(urls) == 1


def test_cifar10_download_refuses_wrong_archive_checksum(tmp_path, monkeypatch):
    archive, checksums = fake_archive(tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(archive))
    checksums[data.CIFAR10_ARCHIVE] = "f" * 32
    with pytest.raises(ValueError, match="checksum mismatch for .*cifar-10-python.tar.gz"):
        cifar10(tmp_path / "root", download=True, checksums=checksums)
    assert not (tmp_path / "root" / CIFAR10_FOLDER).exists()  # nothing extracted
    assert not (tmp_path / "root" / data.CIFAR10_ARCHIVE).exists()  # bad archive deleted


def test_official_checksums_are_listed():
    assert data.CIFAR10_ARCHIVE_MD5 == "c58f30108f718f92721af3b95e74349a"
    assert set(data.CIFAR10_MD5) >= {*data.CIFAR10_TRAIN_FILES, *data.CIFAR10_TEST_FILES}


# ----------------------------------------------------------------------------------------------
# augmentation and loaders
# ----------------------------------------------------------------------------------------------
def test_random_crop_flip_without_padding_only_flips():
    X = torch.randn(16, 3, 8, 8)
    out = random_crop_flip(X, padding=0, generator=torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, x.flip(-1)) for o, x in zip(out, X, strict=True)]
    kept = [torch.equal(o, x) for o, x in zip(out, X, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)


def test_random_crop_flip_crops_from_the_padded_image():
    X = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4) + 1  # no zeros inside
    out = random_crop_flip(X, padding=2, generator=torch.Generator().manual_seed(1))
    assert out.shape == X.shape
    # every non-zero output pixel is a pixel of X (zeros come from the padding)
    assert set(out[out != 0].tolist()) <= set(X.flatten().tolist())


def test_make_loader_batches_and_seeded_order():
    X, y = torch.arange(10.0).view(10, 1), torch.arange(10)
    batches = list(make_loader(X, y, batch_size=4, shuffle=False))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    order = lambda seed: torch.cat([b[1] for b in make_loader(X, y, 4, seed=seed)]).tolist()
    assert order(3) == order(3)
    assert sorted(order(3)) == list(range(10))
    assert order(3) != order(4)


def test_make_loader_bad_arguments():
    X, y = torch.zeros(5, 2), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="same length; got 5 and 4"):
        make_loader(X, y, 2)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        make_loader(X[:4], y, 0)
