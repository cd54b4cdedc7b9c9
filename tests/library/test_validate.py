"""Tests for resnet_course.validate, the library's one copy of its argument checks."""

import inspect

import numpy as np
import pytest

from resnet_course.validate import check_int, ints_at_least, is_int, is_real


@pytest.mark.parametrize("value", [0, 3, -2, np.int64(5), np.int8(1)])
def test_is_int_accepts_python_and_numpy_integers(value):
    assert is_int(value)


@pytest.mark.parametrize("value", [True, False, 2.0, "3", None, np.float32(1)])
def test_is_int_refuses_bools_floats_and_strings(value):
    assert not is_int(value)


@pytest.mark.parametrize("value", [0, 0.5, -3, np.float32(0.1), np.int64(2)])
def test_is_real_accepts_finite_numbers(value):
    assert is_real(value)


@pytest.mark.parametrize("value", [True, float("inf"), float("nan"), "1", None, 1j])
def test_is_real_refuses_bools_non_finite_and_non_numbers(value):
    assert not is_real(value)


def test_check_int_returns_the_value_or_says_what_was_wrong():
    assert check_int("width", 4) == 4
    assert check_int("num_blocks", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^width must be an integer >= 1; got 0$"):
        check_int("width", 0)
    with pytest.raises(ValueError, match=r"depth must be an integer >= 2; got True"):
        check_int("depth", True, minimum=2)
    with pytest.raises(ValueError, match=r"got 2\.0"):
        check_int("width", 2.0)


@ints_at_least(width=1, num_blocks=0)
def _build(width, num_blocks=2, scale=1.0):
    """A stand-in for a model builder."""
    return width, num_blocks, scale


def test_ints_at_least_checks_positional_keyword_and_default_arguments():
    assert _build(3) == (3, 2, 1.0)
    assert _build(3, 0, scale=0.5) == (3, 0, 0.5)
    with pytest.raises(ValueError, match="width must be an integer >= 1; got 0"):
        _build(0)
    with pytest.raises(ValueError, match="num_blocks must be an integer >= 0; got -1"):
        _build(width=2, num_blocks=-1)
    with pytest.raises(TypeError):  # a wrong call stays a TypeError
        _build()


def test_ints_at_least_checks_defaults_too():
    @ints_at_least(n=1)
    def f(n=0):
        return n

    with pytest.raises(ValueError, match="n must be an integer >= 1; got 0"):
        f()


def test_ints_at_least_keeps_the_name_doc_and_signature():
    assert _build.__name__ == "_build" and _build.__doc__ == "A stand-in for a model builder."
    assert list(inspect.signature(_build).parameters) == ["width", "num_blocks", "scale"]


def test_ints_at_least_refuses_a_name_the_function_does_not_take():
    with pytest.raises(TypeError, match="depth"):

        @ints_at_least(depth=1)
        def g(width):
            return width


def test_ints_at_least_works_on_a_module_init():
    from resnet_course.models import BasicBlock, ResidualBlock

    with pytest.raises(ValueError, match="features must be an integer >= 1; got 0"):
        ResidualBlock(0)
    with pytest.raises(ValueError, match="stride must be an integer >= 1; got 0"):
        BasicBlock(4, 4, stride=0)
    assert BasicBlock(4, 8, 2).conv1.stride == (2, 2)
