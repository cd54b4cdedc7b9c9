"""resnet_course.seeds: the default seed set, another set by environment variable, bad input."""

import pytest

from resnet_course.seeds import ENV_VAR, THREADS_ENV_VAR, chapter_seeds, chapter_threads, seed_set


def test_default_seeds_are_zero_based(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert seed_set() == 0
    assert chapter_seeds(3) == (0, 1, 2)


def test_another_seed_set_is_disjoint(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "1")
    assert chapter_seeds(5) == (1000, 1001, 1002, 1003, 1004)
    monkeypatch.setenv(ENV_VAR, "0")
    assert set(chapter_seeds(5)).isdisjoint(range(1000, 2000))


@pytest.mark.parametrize("raw", ["-1", "one", "1.5"])
def test_bad_seed_set_is_refused(monkeypatch, raw):
    monkeypatch.setenv(ENV_VAR, raw)
    with pytest.raises(ValueError, match=ENV_VAR):
        chapter_seeds(3)


@pytest.mark.parametrize("n", [0, -2, True, 2.0, 1001])
def test_bad_count_is_refused(monkeypatch, n):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ValueError, match="n must be"):
        chapter_seeds(n)


def test_threads_default_and_override(monkeypatch):
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    assert chapter_threads() == 1
    monkeypatch.setenv(THREADS_ENV_VAR, "2")
    assert chapter_threads() == 2
    monkeypatch.setenv(THREADS_ENV_VAR, "0")
    with pytest.raises(ValueError, match=THREADS_ENV_VAR):
        chapter_threads()
