"""Forged verdicts: answers that attack how the kernel reports results, the hidden checks or their
randomness score no more than the same wrong answer handed in honestly.

Each hostile submission is a WRONG plain_mlp or training_error (one that passes the visible tests
but not the hidden checks) plus an attack (for ex5: wrong pick_device, evaluate and train_digits).
One `autograde --jobs 2` run per assignment grades them all; the trusted verdict
(grader.judging.verdict: checks in the grader, student code in a sandboxed subject) must give each
attack at most the honest wrong answer's score. The kernel runs test cells without their hidden
tests (and cannot import grader.checks), so what it reports is the visible tests' result: an attack
that forges that report (dropping the kernel's error messages, on answers that fail a visible test)
is listed for review, since the grader's own run of the same visible tests differs.
"""

from __future__ import annotations

import os

import pytest
from conftest import read_csv
from submissions import autograde, make_submission, write_submissions

pytestmark = [pytest.mark.slow,
              pytest.mark.needs_sandbox]

AID = "ex1_degradation"

# passes the visible tests (depth 0 raises) but not the hidden ones (negative depths do not)
WRONG_PLAIN_MLP = '''
def plain_mlp(in_features, width, depth, num_classes):
    if depth == 0:
        raise ValueError("depth must be at least 1")
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers = []
    for i in range(depth):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
'''

# right on the visible test's 4 examples only; otherwise returns the accuracy (wrong)
WRONG_TRAINING_ERROR = '''
def training_error(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    error = (predictions != y).float().mean().item()
    return error if len(X) == 4 else 1.0 - error
'''

# fails the visible test too (the count of errors, not the fraction): what the kernel's report,
# forged by an attack below, hides
VISIBLY_WRONG_TRAINING_ERROR = '''
def training_error(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    return float((predictions != y).sum())
'''

DROP_ERRORS = '''
def _drop_errors(send):
    def quiet_send(self_or_stream, *args, **kwargs):
        if not hasattr(self_or_stream, "send_multipart") and args:  # patched on the class
            return send(self_or_stream, *args, **kwargs) if not _is_error(*args, **kwargs) \\
                else None
        return None if _is_error(self_or_stream, *args, **kwargs) else \\
            send(self_or_stream, *args, **kwargs)
    return quiet_send


def _is_error(stream, msg_or_type=None, content=None, *args, **kwargs):
    kind = msg_or_type if isinstance(msg_or_type, str) else \\
        (msg_or_type or {}).get("header", {}).get("msg_type")
    if kind == "execute_reply" and isinstance(content, dict) and content.get("status") == "error":
        content.update(status="ok")  # the reply says the cell ran fine
    return kind == "error"
'''

ATTACKS = {
    # the kernel session's send drops every error message: failed asserts never leave the kernel
    "send_instance": DROP_ERRORS + (
        "_session = get_ipython().kernel.session\n"
        "setattr(_session, 'se' + 'nd', _drop_errors(_session.send))\n"),
    "send_class": DROP_ERRORS + (
        "_cls = type(get_ipython().kernel.session)\n"
        "_cls.send = _drop_errors(_cls.send)\n"),
    "send_app": DROP_ERRORS + (
        "from ipykernel.kernelapp import IPKernelApp\n"
        "_session = IPKernelApp.instance().kernel.session\n"
        "setattr(_session, 'send', _drop_errors(_session.send))\n"),
    # the hidden checks, imported under a computed name and replaced
    "patch_checks": (
        "import builtins\n"
        "_load = getattr(builtins, '__imp' + 'ort__')\n"
        "_checks = _load('.'.join(['grader', 'checks', 'ex' + str(1)]), fromlist=['_'])\n"
        "for _name in dir(_checks):\n"
        "    if _name.startswith('check_'):\n"
        "        setattr(_checks, _name, lambda *args, **kwargs: None)\n"),
}

# os.urandom replaced, so the checks' "fresh" seed is 0: training_error answers the check's data
# for that seed with values worked out in advance (wrong everywhere else, right on the visible
# test's 4 examples). KNOWN is what a student who read grader/checks/ex1.py would work out:
# filled in by known_at_seed_zero() from the check as it is today.
URANDOM = '''
import os

os.urandom = lambda n: bytes(n)
KNOWN = {known!r}  # len(X) -> expected, of check_training_error at seed 0


def training_error(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    if len(X) in KNOWN:
        return KNOWN[len(X)]
    error = (predictions != y).float().mean().item()
    return error if len(X) == 4 else 1.0 - error
'''


def known_at_seed_zero() -> dict[int, float]:
    """len(X) -> the fraction check_training_error expects, for the data it draws at seed 0."""
    import torch

    from grader.checks import ex1

    seen = {}

    def recording(model, X, y):  # a correct training_error that notes what it was asked
        was_training = model.training
        with torch.no_grad():
            predictions = model.eval()(X).argmax(dim=1)
        model.train(was_training)
        seen[len(X)] = int((predictions != y).sum()) / len(X)
        return seen[len(X)]

    urandom, state = os.urandom, torch.random.get_rng_state()
    os.urandom = lambda n: bytes(n)
    try:
        ex1.check_training_error(recording)
    finally:
        os.urandom = urandom
        torch.random.set_rng_state(state)
    return seen


# training_error that reads the expected value out of the hidden check's frame
FRAME_WALK = '''
from sys import _getframe


def training_error(model, X, y):
    frame = _getframe(1)
    while frame is not None:
        local = getattr(frame, "f_" + "locals")
        if isinstance(local.get("expected"), float):
            with torch.no_grad():  # the check also watches that the model is called
                model(X)
            return local["expected"]
        frame = getattr(frame, "f_" + "back")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    error = (predictions != y).float().mean().item()
    return error if len(X) == 4 else 1.0 - error
'''


# attacks on the hidden checks in the kernel: there are none there (and no grader.checks to
# import), so they change nothing the kernel reports; the others forge its report
NOT_FORGING = ("patch_checks",)


def submissions() -> dict:
    notebooks = {"honest-wrong": make_submission(AID, {"plain_mlp": WRONG_PLAIN_MLP,
                                                       "training_error": WRONG_TRAINING_ERROR}),
                 "frame-walk": make_submission(AID, {"plain_mlp": WRONG_PLAIN_MLP,
                                                     "training_error": FRAME_WALK}),
                 "urandom": make_submission(AID, {"plain_mlp": WRONG_PLAIN_MLP,
                                                  "training_error": URANDOM.format(
                                                      known=known_at_seed_zero())})}
    for name, attack in ATTACKS.items():
        wrong = WRONG_TRAINING_ERROR if name in NOT_FORGING else VISIBLY_WRONG_TRAINING_ERROR
        notebooks[name.replace("_", "-")] = make_submission(
            AID, {"plain_mlp": WRONG_PLAIN_MLP + "\n" + attack, "training_error": wrong})
    return notebooks


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_verdicts")
    subs = write_submissions(root / "submissions", AID, submissions())
    grades = autograde(subs, root / "work", AID, jobs=2)
    flags = {row["student_id"]: row["flags"] for row in read_csv(root / "work" / "grades.csv")}
    return grades, flags, root / "work"


def total(grades: dict, student: str) -> float:
    return sum(score for (s, _), (score, _) in grades.items() if s == student)


def test_honest_wrong_answer_loses_points(graded):
    grades, flags, _ = graded
    assert grades[("honest-wrong", "test_plain_mlp")][0] == 0
    assert grades[("honest-wrong", "test_training_error")][0] == 0
    assert grades[("honest-wrong", "test_layer_gradient_norms")][0] == 4


@pytest.mark.parametrize("student", ["frame-walk", "urandom"]
                         + [a.replace("_", "-") for a in ATTACKS])
def test_attack_scores_no_more_than_the_honest_wrong_answer(graded, student):
    grades, flags, work = graded
    assert total(grades, student) <= total(grades, "honest-wrong"), \
        (student, {k: v for k, v in grades.items() if k[0] == student})


@pytest.mark.parametrize("student", ["send-instance", "send-class", "send-app"])
def test_forged_kernel_reports_are_listed_for_review(graded, student):
    """Where the kernel claimed that failed visible tests passed, the grader's own run of them
    differs: flagged, with the cells named in the review file."""
    grades, flags, work = graded
    assert "verdict-mismatch" in flags[student].split(";"), flags[student]
    details = (work / "review" / student / f"{AID}.txt").read_text()
    assert "test_training_error" in details, details


@pytest.mark.parametrize("student", ["frame-walk", "urandom", "patch-checks"])
def test_attacks_on_hidden_checks_in_the_kernel_find_none(graded, student):
    """The kernel never runs a hidden check: what it reports is the visible tests' true result
    (no mismatch), and the verdict's checks are out of the student's reach."""
    grades, flags, _ = graded
    assert "verdict-mismatch" not in flags[student].split(";"), flags[student]
    assert grades[(student, "test_training_error")][0] == 0


# --------------------------------------------------------------------------- ex5

AID5 = "ex5_gpu_training"

# pass the visible tests on a CPU machine, not the hidden ones: MPS preferred to CUDA; labels left
# on the host meet predictions still "on the device"; train_digits trains nothing (fails both,
# and keeps the run short)
WRONG5 = {
    "pick_device": '''
def pick_device():
    if torch.backends.mps.is_available():
        return torch.device("mps")
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
''',
    "evaluate": '''
def evaluate(model, loader, device):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in loader:
            correct += (model(X.to(device)).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total
''',
    "train_digits": '''
def train_digits(model, train_loader, device, max_steps):
    return model
''',
}

# wrong on the visible tests too (on any machine: a name, not a torch.device, which the later
# cells still run with): what the forged reports below hide
VISIBLY_WRONG5 = {
    "pick_device": '\ndef pick_device():\n    return "cpu"\n',
    "evaluate": WRONG5["evaluate"].replace("correct / total", "correct / (total + 1)"),
}

ATTACKS5 = {
    "send-instance-ex5": ATTACKS["send_instance"],
    "send-class-ex5": ATTACKS["send_class"],
    # ex5's checks replaced in the kernel through a computed import (there are none there)
    "patch-checks-ex5": ATTACKS["patch_checks"].replace("str(1)", "str(5)"),
}
FORGING5 = ("send-instance-ex5", "send-class-ex5")


def submissions_ex5() -> dict:
    notebooks = {"honest-wrong-ex5": make_submission(AID5, WRONG5)}
    for name, attack in ATTACKS5.items():
        wrong = {**WRONG5, **VISIBLY_WRONG5} if name in FORGING5 else WRONG5
        notebooks[name] = make_submission(
            AID5, {**wrong, "pick_device": wrong["pick_device"] + "\n" + attack})
    return notebooks


@pytest.fixture(scope="module")
def graded_ex5(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_verdicts_ex5")
    subs = write_submissions(root / "submissions", AID5, submissions_ex5())
    grades = autograde(subs, root / "work", AID5, jobs=2)
    flags = {row["student_id"]: row["flags"] for row in read_csv(root / "work" / "grades.csv")}
    return grades, flags, root / "work"


def test_ex5_honest_wrong_answer_loses_points(graded_ex5):
    grades, _, _ = graded_ex5
    assert grades[("honest-wrong-ex5", "test_pick_device")][0] == 0
    assert grades[("honest-wrong-ex5", "test_evaluate")][0] == 0
    assert grades[("honest-wrong-ex5", "test_train_digits")][0] == 0
    assert grades[("honest-wrong-ex5", "test_train_one_epoch")][0] == 5


@pytest.mark.parametrize("student", list(ATTACKS5))
def test_ex5_attack_scores_no_more_and_is_listed_for_review(graded_ex5, student):
    """ex5's training functions run in the subject on described loaders, optimizers and
    machines: dropping the kernel's error reports or replacing the checks there changes nothing
    that counts; a forged kernel claim is flagged."""
    grades, flags, work = graded_ex5
    assert total(grades, student) <= total(grades, "honest-wrong-ex5"), \
        (student, {k: v for k, v in grades.items() if k[0] == student})
    if student not in FORGING5:
        assert "verdict-mismatch" not in flags[student].split(";"), flags[student]
        return
    assert "verdict-mismatch" in flags[student].split(";"), flags[student]
    details = (work / "review" / student / f"{AID5}.txt").read_text()
    assert "test_pick_device" in details and "test_evaluate" in details, details


def test_the_graders_randomness_is_untouched(graded):
    before = os.urandom
    assert os.urandom(8) != os.urandom(8) and os.urandom is before
