"""grader/checks/common.py, the helpers every hidden check uses (no kernel, no nbgrader): the
observed/expected message, seeding, tensor comparison, the ValueError rule, silencing student
warnings, model state helpers, and the rule that an answer is the student's own code (not the
course library's or the grader's)."""

import sys
import warnings

import pytest
import torch
from torch import nn

from grader.checks import common
from grader.checks.common import CheckFailure
from resnet_course import models

# ---------------------------------------------------------------------------- messages


def test_fail_says_what_was_observed_and_expected():
    with pytest.raises(CheckFailure) as info:
        common.fail("plain_mlp(2, 4, 3, 5): wrong depth", 2, 3)
    assert str(info.value) == "plain_mlp(2, 4, 3, 5): wrong depth\n  observed: 2\n  expected: 3"
    assert isinstance(info.value, AssertionError)  # a failed test cell, as nbgrader counts it


def test_expect_fails_only_on_a_false_condition():
    common.expect(True, "never shown", 1, 2)
    with pytest.raises(CheckFailure, match="observed: 1\n  expected: 2"):
        common.expect(False, "shown", 1, 2)


# ---------------------------------------------------------------------------- randomness


def test_seeded_draws_the_same_and_restores_the_rng():
    torch.manual_seed(1)
    untouched = torch.rand(3)
    torch.manual_seed(1)
    with common.seeded(7):
        first = torch.rand(3)
    assert torch.equal(torch.rand(3), untouched)  # as if the block had not drawn
    with common.seeded(7):
        assert torch.equal(torch.rand(3), first)


def test_seeded_restores_the_rng_when_the_block_raises():
    torch.manual_seed(2)
    untouched = torch.rand(3)
    torch.manual_seed(2)
    with pytest.raises(ZeroDivisionError), common.seeded(5):
        torch.rand(10)
        1 / 0  # noqa: B018 (a student's error inside the block)
    assert torch.equal(torch.rand(3), untouched)


def test_fresh_seed_differs_between_runs_and_seeds_torch():
    seeds = {common.fresh_seed() for _ in range(5)}
    assert len(seeds) == 5
    seed = common.fresh_seed()
    drawn = torch.rand(2)
    torch.manual_seed(seed)
    assert torch.equal(torch.rand(2), drawn)


def test_randint_stays_in_the_closed_range():
    torch.manual_seed(0)
    drawn = {common.randint(2, 4) for _ in range(200)}
    assert drawn == {2, 3, 4}


# ---------------------------------------------------------------------------- tensors


def test_expect_close_accepts_within_tolerance_and_another_dtype():
    expected = torch.tensor([1.0, 2.0], dtype=torch.float64)
    common.expect_close(torch.tensor([1.0, 2.0 + 1e-6]), expected, "out")


@pytest.mark.parametrize("actual,message", [
    ([1.0, 2.0], "out: wrong type\n  observed: list"),
    (torch.zeros(2, 1), "out: wrong shape\n  observed: (2, 1)\n  expected: (2,)"),
    (torch.tensor([1.0, 2.5]), "largest difference 0.5 at index (1,)"),
], ids=["not_a_tensor", "wrong_shape", "wrong_values"])
def test_expect_close_says_how_the_tensors_differ(actual, message):
    with pytest.raises(CheckFailure) as info:
        common.expect_close(actual, torch.tensor([1.0, 2.0]), "out")
    assert message in str(info.value)


def test_expect_close_points_at_the_worst_element_of_a_matrix():
    expected = torch.zeros(2, 3)
    actual = expected.clone()
    actual[1, 2] = 3.0
    actual[0, 0] = 1.0
    with pytest.raises(CheckFailure, match=r"at index \(1, 2\)"):
        common.expect_close(actual, expected, "out")


# ---------------------------------------------------------------------------- invalid arguments


def _raises(error):
    def call():
        raise error
    return call


def test_expect_value_error_accepts_a_value_error_and_silences_its_warnings(capfd):
    def warns_then_raises():
        warnings.warn("student's warning", stacklevel=1)
        print("to stderr", file=sys.stderr)
        raise ValueError("depth must be >= 1")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escaped would raise here
        common.expect_value_error(warns_then_raises, "plain_mlp(2, 4, 0, 5)", "depth 0")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("call,observed", [
    (_raises(TypeError("bad")), "observed: TypeError: bad"),
    (lambda: None, "observed: no exception"),
], ids=["another_exception", "no_exception"])
def test_expect_value_error_fails_on_another_outcome(call, observed):
    with pytest.raises(CheckFailure) as info:
        common.expect_value_error(call, "plain_mlp(2, 4, 0, 5)", "depth 0")
    message = str(info.value)
    assert message.startswith("plain_mlp(2, 4, 0, 5) should raise ValueError (depth 0)")
    assert observed in message and "expected: ValueError" in message


# ---------------------------------------------------------------------------- models


def test_linear_layers_in_registration_order_at_any_depth():
    first, second, third = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1)
    model = nn.Sequential(first, nn.ReLU(), nn.Sequential(second, nn.Conv2d(1, 1, 1)), third)
    assert common.linear_layers(model) == [first, second, third]


def test_snapshot_and_same_state_see_parameters_and_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    before = common.snapshot(model)
    assert common.same_state(model, before)
    with torch.no_grad():
        model[1].running_mean += 1  # a buffer, not a parameter
    assert not common.same_state(model, before)
    model[1].running_mean.copy_(before["1.running_mean"])
    assert common.same_state(model, before)
    assert not common.same_state(model, {**before, "extra": torch.zeros(1)})


def test_count_params():
    assert common.count_params(nn.Linear(3, 4)) == 16
    assert common.count_params(nn.Linear(3, 4, bias=False)) == 12


def test_randomize_replaces_every_weight_and_statistic_in_place():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 4),
                          nn.BatchNorm1d(4))
    for p in model.parameters():
        nn.init.zeros_(p)
    torch.manual_seed(0)
    assert common.randomize_(model) is model
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        assert value.float().std() > 0, name  # no zero-initialised layer left
    for bn in (model[1], model[3]):
        assert ((bn.weight >= 0.5) & (bn.weight <= 1.5)).all()
        assert ((bn.running_var >= 0.5) & (bn.running_var <= 1.5)).all()


# ---------------------------------------------------------------------------- own implementation


def _student(source: str) -> dict:
    """A notebook's namespace after `source` ran in it (objects of module __main__)."""
    namespace = {"__name__": "__main__", "nn": nn, "models": models, "torch": torch}
    exec(source, namespace)
    return namespace


def test_defined_in_library_names_the_module_of_an_object_or_its_class():
    assert common.defined_in_library(models.plain_mlp) == "resnet_course.models"
    assert common.defined_in_library(models.ResidualBlock(2)) == "resnet_course.models"
    assert common.defined_in_library(common.fail) == "grader.checks.common"
    assert common.defined_in_library(nn.Linear(2, 2)) is None
    assert common.defined_in_library(_student("def f():\n    return 1\n")["f"]) is None


@pytest.mark.parametrize("source,name,used", [
    ("def f(x):\n    return models.plain_mlp(x, 2, 2, 2)\n", "f", "module resnet_course.models"),
    ("from resnet_course.models import plain_mlp\ndef f(x):\n    return plain_mlp(x, 2, 2, 2)\n",
     "f", "plain_mlp from resnet_course.models"),
    ("def f():\n    import resnet_course.models\n", "f", "import resnet_course.models"),
    ("def f():\n    return (lambda: models.conv3x3(1, 1))()\n", "f",
     "module resnet_course.models"),  # inside a lambda: a nested code object
    ("def helper():\n    return models.conv3x3(1, 1)\ndef f():\n    return helper()\n", "f",
     "module resnet_course.models"),  # through the student's own helper
    ("class B(models.ResidualBlock):\n    pass\n", "B",
     "base class resnet_course.models.ResidualBlock"),
    ("class B(nn.Module):\n    def forward(self, x):\n        return models.conv3x3(1, 1)(x)\n",
     "B", "module resnet_course.models"),
], ids=["module_global", "imported_function", "import_in_body", "in_a_lambda", "via_own_helper",
        "base_class", "in_a_method"])
def test_library_references_follow_the_students_code(source, name, used):
    assert used in common.library_references(_student(source)[name])


def test_library_references_of_own_code_and_of_a_proxys_report():
    own = _student("def helper(x):\n    return torch.relu(x)\n"
                   "def f(x):\n    return f(helper(x))\n")  # recursion: each function once
    assert common.library_references(own["f"]) == []

    class Proxy:  # grader.judging.proxy's stand-in reports what the subject found
        __subject_library_references__ = ["import resnet_course"]
    assert common.library_references(Proxy()) == ["import resnet_course"]


@pytest.mark.parametrize("source,obj,message", [
    ("", lambda ns: models.plain_mlp, "must be implemented in this notebook, not imported"),
    ("def f():\n    return nn.Sequential(models.ResidualBlock(2))\n", lambda ns: ns["f"](),
     "a submodule ResidualBlock from resnet_course.models"),
    ("def f():\n    return models.plain_mlp(2, 2, 2, 2)\n", lambda ns: ns["f"],
     "your code uses module resnet_course.models"),
], ids=["library_function", "library_submodule", "calls_the_library"])
def test_expect_own_implementation_refuses_the_library(source, obj, message):
    with pytest.raises(CheckFailure, match=message):
        common.expect_own_implementation(obj(_student(source)), "answer")


def test_expect_own_implementation_accepts_the_students_code():
    ns = _student("class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                  "        self.linear = nn.Linear(2, 2)\n")
    common.expect_own_implementation(ns["Block"](), "Block")
    common.expect_own_implementation(ns["Block"], "Block")


def test_build_module_wants_an_nn_module_of_the_students_making():
    ns = _student("class Block(nn.Module):\n    pass\n"
                  "class NotModule:\n    def __init__(self, n):\n        pass\n")
    assert isinstance(common.build_module(ns["Block"], "Block", "Block()"), nn.Module)
    with pytest.raises(CheckFailure, match="Block\\(2\\) must be an nn.Module"):
        common.build_module(ns["NotModule"], "Block", "Block(2)", 2)
    with pytest.raises(CheckFailure, match="not imported"):
        common.build_module(models.ResidualBlock, "ResidualBlock", "ResidualBlock(2)", 2)
