"""Unit tests of the hidden-test logic of every assignment (no kernel, no nbgrader).

For each assignment: the solution and every correct variant pass every check (and the visible
tests); every wrong variant fails the check of its own name with an observed/expected message.
"""

import pytest
import variants_ex1
import variants_ex2
import variants_ex3
import variants_ex4
import variants_ex5
from submissions import load_answers, visible_tests

from grader.checks import ex1, ex2, ex3, ex4, ex5
from grader.checks.common import CheckFailure

ASSIGNMENTS = {
    "ex1_degradation": (variants_ex1, {
        "plain_mlp": ex1.check_plain_mlp,
        "training_error": ex1.check_training_error,
        "layer_gradient_norms": ex1.check_layer_gradient_norms,
        "plain_bn_mlp": ex1.check_plain_bn_mlp,
    }),
    "ex2_identity": (variants_ex2, {
        "ResidualBlock": ex2.check_residual_block,
        "zero_init_residual_": ex2.check_zero_init_residual,
        "residual_mlp": ex2.check_residual_mlp,
        "PreActBlock": ex2.check_preact_block,
        "preact_mlp": ex2.check_preact_mlp,
    }),
    "ex3_shortcuts": (variants_ex3, {
        "ZeroPadShortcut": ex3.check_zero_pad_shortcut,
        "ProjectionShortcut": ex3.check_projection_shortcut,
        "BasicBlock": ex3.check_basic_block,
        "Bottleneck": ex3.check_bottleneck,
    }),
    "ex4_image_resnets": (variants_ex4, {
        "count_parameters": ex4.check_count_parameters,
        "resnet_cifar": ex4.check_resnet_cifar,
        "count_macs": ex4.check_count_macs,
    }),
    "ex5_gpu_training": (variants_ex5, {
        "pick_device": ex5.check_pick_device,
        "train_one_epoch": ex5.check_train_one_epoch,
        "evaluate": ex5.check_evaluate,
        "train_digits": ex5.check_train_digits,
    }),
}


def _cases(kind: str) -> list[tuple[str, ...]]:
    cases = []
    for assignment, (variants, checks) in ASSIGNMENTS.items():
        if kind == "names":
            cases += [(assignment, name) for name in checks]
        elif kind == "correct":
            cases += [(assignment, v) for v in variants.CORRECT]
        else:
            cases += [(assignment, n, v) for n in variants.WRONG for v in variants.WRONG[n]]
    return cases


@pytest.mark.parametrize("assignment,name", _cases("names"))
def test_solution_passes(assignment, name):
    checks = ASSIGNMENTS[assignment][1]
    checks[name](load_answers(assignment)[name])


@pytest.mark.slow
@pytest.mark.parametrize("assignment,name", _cases("names"))
def test_solution_passes_on_more_random_draws(assignment, name):
    # each check draws fresh inputs, weights and seeds: a right answer must pass every draw
    checks = ASSIGNMENTS[assignment][1]
    solution = load_answers(assignment)
    for _ in range(2):
        checks[name](solution[name])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_passes_visible_tests(assignment):
    solution = load_answers(assignment)
    for source in visible_tests(assignment).values():
        exec(source, dict(solution))


@pytest.mark.parametrize("assignment,variant", _cases("correct"))
def test_correct_variant_passes(assignment, variant):
    variants, checks = ASSIGNMENTS[assignment]
    namespace = load_answers(assignment, variants.CORRECT[variant])
    for name, check in checks.items():
        check(namespace[name])
    for source in visible_tests(assignment).values():  # the visible tests accept it too
        exec(source, namespace)


@pytest.mark.parametrize("assignment,name,variant", _cases("wrong"))
def test_wrong_variant_fails(assignment, name, variant):
    variants, checks = ASSIGNMENTS[assignment]
    namespace = load_answers(assignment, {name: variants.WRONG[name][variant]})
    with pytest.raises(CheckFailure) as info:
        checks[name](namespace[name])
    message = str(info.value)
    assert "observed" in message and "expected" in message


@pytest.mark.slow
@pytest.mark.parametrize("assignment,name,variant", _cases("wrong"))
def test_wrong_variant_fails_on_more_random_draws(assignment, name, variant):
    # a check that catches a mistake only on some draws lets it through on others (an answer
    # ignoring groups passed whenever no random conv was grouped)
    variants, checks = ASSIGNMENTS[assignment]
    namespace = load_answers(assignment, {name: variants.WRONG[name][variant]})
    for _ in range(4):
        with pytest.raises(CheckFailure):
            checks[name](namespace[name])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_contract_name_has_variants(assignment):
    variants, checks = ASSIGNMENTS[assignment]
    assert set(variants.WRONG) == set(checks)
    assert all(len(v) >= 3 for v in variants.WRONG.values())
    for name in checks:  # each answer written correctly in at least two other ways
        assert sum(name in answers for answers in variants.CORRECT.values()) >= 2, name
