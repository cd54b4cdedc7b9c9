"""Hidden tests for ex5_gpu_training: `pick_device`, `train_one_epoch`, `evaluate`.

Grading runs on a CPU, so GPU behaviour is checked through what the code does:

* `pick_device`: `torch.cuda.is_available` / `torch.backends.mps.is_available` (and the generic
  `torch.accelerator` queries) are replaced for the duration of the check (and restored after) to
  play a CUDA machine, a Mac and a plain CPU box.

Under trusted verdicts the student's functions are proxies (grader.judging.proxy): each call runs in
the subject on a description of the model, loader, optimizer and machine
(grader.inside.instruments), and what it changed and observed comes back as data; references stay
here. The checks read the same either way.
* batches come from a loader whose tensors record whether they were moved with `.to(device)`
  before the model or the loss used them (a no-op on CPU, but a crash on a GPU).
* `train_one_epoch` is compared with a reference epoch run now on a copy of the same model with
  the same data order and optimizer settings: returned loss and resulting weights.
* `evaluate` is compared with a reference accuracy on labels built so that accuracy, error and the
  mean of per-batch accuracies all differ; BatchNorm/Dropout reveal train mode, hooks reveal
  gradient tracking. The logits count as "on the device" until `.cpu()` brings them back, so
  labels may stay on the host when they only meet predictions moved back there.
* `train_digits` trains the digits net twice on fresh splits within a step budget and must reach a
  stated held-out accuracy. The digits are transformed by a draw made at grading time
  (`secret_view`), so the held-out digits are none the student's process could load; the budget
  counts the work done anywhere in the call (instruments.count_work: every forward call with
  gradients of a layer holding parameters, in any module, and every parameter tensor an optimizer
  step updates), in passes of the net, not the calls of the model handed over.
"""

from __future__ import annotations

import copy
import numbers
import random

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.checks.common import (
    expect,
    expect_close,
    expect_own_implementation,
    fail,
    fresh_seed,
    quiet,
)
from grader.inside.instruments import (  # noqa: F401 - HostBatch and DeviceResult: the checks' API
    TAMPERED,
    DeviceResult,
    HostBatch,
    count_work,
    finish_record,
    host_collate,
    mark_device,
    play_machine,
    restore,
    start_record,
)

# ---------------------------------------------------------------------------------------------
# pick_device
# ---------------------------------------------------------------------------------------------
SCENARIOS = [  # (cuda available, mps available, expected device type)
    (True, True, "cuda"),
    (True, False, "cuda"),
    (False, True, "mps"),
    (False, False, "cpu"),
]


def check_pick_device(pick_device) -> None:
    random.seed(fresh_seed())  # problem sizes too, not only torch's draws
    expect_own_implementation(pick_device, "pick_device")
    for cuda, mps, want in random.sample(SCENARIOS, len(SCENARIOS)):
        machine = f"on a machine where CUDA is {'' if cuda else 'not '}available and Apple " \
                  f"MPS is {'' if mps else 'not '}available"
        saved = play_machine(cuda, mps)  # restored below
        try:
            got = pick_device()
        except Exception as exc:
            got = exc
        finally:
            restore(saved)
        if isinstance(got, Exception):
            fail(f"pick_device() raised an error {machine}", f"{type(got).__name__}: {got}",
                 f"torch.device('{want}')")
        expect(isinstance(got, torch.device), f"pick_device() must return a torch.device "
               f"({machine})", repr(got), f"torch.device('{want}')")
        expect(got.type == want and got.index in (None, 0), f"pick_device() {machine}",
               repr(got), f"device(type='{want}')")


# ---------------------------------------------------------------------------------------------
# Batches that notice whether they were moved to the device (grader.inside.instruments.HostBatch)
# ---------------------------------------------------------------------------------------------
def host_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    """A DataLoader (fixed order) whose batches are HostBatch tensors."""
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False,
                      collate_fn=host_collate)


def _expect_moved(name: str, used: list[str] | None) -> None:
    """`used`: instruments.finish_record of the call (None: the record was tampered with)."""
    HostBatch.used_unmoved = []
    expect(used is not None, f"{name}: the check watches whether batches are moved to the "
           "device", TAMPERED, "the grader's instruments left as they were")
    used = sorted(set(used))
    expect(not used, f"{name}: batches must be moved with .to(device) before the model or the "
           "loss uses them, and labels left on the host can only meet predictions brought back "
           "with .cpu() (on a GPU anything else is a device-mismatch error)",
           f"batch tensors still on the host were passed to {used}",
           "X, y = X.to(device), y.to(device) first")


def _expect_number(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        fail(f"{what} must return a Python float", f"a tensor {value!r}",
             "a float (use .item())")
    expect(isinstance(value, numbers.Real) and not isinstance(value, bool),
           f"{what} must return a float", type(value).__name__, "float")
    return float(value)


# ---------------------------------------------------------------------------------------------
# train_one_epoch
# ---------------------------------------------------------------------------------------------
def reference_train_one_epoch(model, loader, optimizer, device, amp=False,
                              batch_losses: list | None = None) -> float:
    """Train mode, batches to device, bf16 autocast when amp; mean loss per example. Each
    batch's mean loss is appended to `batch_losses` when given."""
    model.train()
    total, count = 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(X), y)  # mean over this batch
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
        if batch_losses is not None:
            batch_losses.append(loss.item())
    return total / count


def _small_net(d: int, h: int, classes: int, batchnorm: bool) -> nn.Module:
    layers = [nn.Linear(d, h)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(h))  # behaves differently in train and eval mode
    layers += [nn.ReLU(), nn.Linear(h, classes)]
    return nn.Sequential(*layers)


def _training_problem(batchnorm: bool):
    """(model, X, y, batch_size, lr): a short last batch (>= 2 examples, for BatchNorm)."""
    d, h, classes = random.randint(3, 8), random.randint(8, 16), random.randint(3, 5)
    batch_size = random.randint(8, 12)
    n = batch_size * random.randint(3, 4) + random.randint(2, 4)
    X = torch.randn(n, d)
    X[-(n % batch_size):] *= 4.0  # the short last batch: a different loss (without BatchNorm)
    y = torch.randint(0, classes, (n,))
    lr = random.choice([0.05, 0.1])
    return _small_net(d, h, classes, batchnorm), X, y, batch_size, lr


def _fp32_tolerance(ref: float) -> float:
    """How far a float32 epoch's returned loss may be from the reference's."""
    return 1e-5 + 1e-4 * abs(ref)


def reference_epoch_losses(model, X, y, batch_size, lr) -> tuple[float, list[float]]:
    """(mean loss per example, each batch's mean loss) of the reference epoch on a copy."""
    losses: list[float] = []
    net = copy.deepcopy(model)
    per_example = reference_train_one_epoch(net, host_loader(X, y, batch_size), _sgd(net, lr),
                                            torch.device("cpu"), batch_losses=losses)
    return per_example, losses


def _sized_epoch_problem():
    """A BatchNorm problem on which the mean loss per example differs from the mean of the
    batches' mean losses by over 20 fp32 tolerances, redrawn until it does. With k full batches
    of b examples and a last one of m, the two differ by k(b - m)(L - A) / ((k + 1)(kb + m)),
    where L is the last batch's loss and A the others' average: BatchNorm undoes the last
    batch's scaled inputs, so L could land next to A, where an answer averaging batch means
    passed (about 1 draw in 400)."""
    for _ in range(100):
        model, X, y, batch_size, lr = _training_problem(batchnorm=True)
        per_example, losses = reference_epoch_losses(model, X, y, batch_size, lr)
        if abs(per_example - sum(losses) / len(losses)) > 20 * _fp32_tolerance(per_example):
            return model, X, y, batch_size, lr
    raise RuntimeError("no training problem with a distinct per-example mean in 100 draws")


def _sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _run_both(train_one_epoch, model, X, y, batch_size, lr, amp):
    """Student's and reference epoch on copies of `model` (both start in eval mode)."""
    device = torch.device("cpu")
    theirs, ours = copy.deepcopy(model).eval(), copy.deepcopy(model).eval()
    opt_theirs, opt_ours = _sgd(theirs, lr), _sgd(ours, lr)

    dtypes = []
    hook = next(m for m in theirs.modules() if isinstance(m, nn.Linear)).register_forward_hook(
        lambda module, inputs, output: dtypes.append(output.dtype))
    record = start_record()
    try:
        loss = train_one_epoch(theirs, host_loader(X, y, batch_size), opt_theirs, device, amp=amp)
    finally:
        hook.remove()
    moved = finish_record(record)  # before the reference epoch adds to it
    ref = reference_train_one_epoch(ours, host_loader(X, y, batch_size), opt_ours, device, amp)
    return theirs, ours, loss, ref, dtypes, moved


def check_train_one_epoch(train_one_epoch) -> None:
    random.seed(fresh_seed())  # problem sizes too, not only torch's draws
    expect_own_implementation(train_one_epoch, "train_one_epoch")
    what = "train_one_epoch(model, loader, optimizer, device)"

    # fp32: exact comparison with the reference epoch.
    model, X, y, batch_size, lr = _sized_epoch_problem()
    theirs, ours, loss, ref, dtypes, moved = _run_both(train_one_epoch, model, X, y,
                                                       batch_size, lr, False)  # fmt: skip
    _expect_moved(what, moved)
    loss = _expect_number(loss, what)
    expect(dtypes and all(t == torch.float32 for t in dtypes),
           f"{what} with amp=False should compute in float32 (no autocast)",
           sorted({str(t) for t in dtypes}), "torch.float32")
    sizes = [len(t) for t in torch.split(y, batch_size)]
    hint = (f"the mean loss per example over the epoch (batches of sizes {sizes}: weight each "
            "batch's mean loss by its size, then divide by the number of examples); the model "
            "must be in train mode, with gradients zeroed before each step")
    expect(abs(loss - ref) <= _fp32_tolerance(ref), f"{what}: returned loss", f"{loss:.6g}",
           f"{ref:.6g} ({hint})")
    for (name, p), q in zip(theirs.state_dict().items(), ours.state_dict().values(), strict=True):
        expect_close(p.float(), q.float(), f"{what}: '{name}' after one epoch (compared with a "
                     "reference epoch on the same data: train mode, zero_grad, backward, step "
                     "for every batch)")

    # amp: bf16 autocast around the forward pass; bf16 rounding allows a loose comparison only.
    model, X, y, batch_size, lr = _training_problem(batchnorm=False)
    theirs, ours, loss, ref, dtypes, moved = _run_both(train_one_epoch, model, X, y,
                                                       batch_size, lr, True)  # fmt: skip
    what = "train_one_epoch(..., amp=True)"
    _expect_moved(what, moved)
    loss = _expect_number(loss, what)
    expect(dtypes and all(t == torch.bfloat16 for t in dtypes),
           f"{what}: the forward pass should run under torch.autocast(device_type=device.type, "
           "dtype=torch.bfloat16)", sorted({str(t) for t in dtypes}), "torch.bfloat16")
    expect(abs(loss - ref) <= 0.05 * abs(ref) + 1e-3, f"{what}: returned loss",
           f"{loss:.4g}", f"about {ref:.4g} (bf16 reference)")


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------
def _evaluation_problem():
    d, h, classes = random.randint(3, 8), random.randint(8, 16), random.randint(3, 6)
    model = nn.Sequential(nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(h, classes))
    bn = model[1]
    with torch.no_grad():  # running stats far from any batch's stats: train != eval mode
        bn.running_mean.uniform_(-2.0, 2.0)
        bn.running_var.uniform_(0.2, 3.0)
    batch_size = random.randint(7, 12)
    n = batch_size * random.randint(3, 5) + random.randint(2, batch_size - 2)
    X = torch.randn(n, d)
    with torch.no_grad():
        predictions = copy.deepcopy(model).eval()(X).argmax(dim=1)
    # Label a chosen number of examples correctly, the rest wrongly: accuracy = correct / n.
    # The short last batch is all correct and the others are not, so the mean of per-batch
    # accuracies differs from the accuracy (and accuracy > 0.5 differs from the error rate).
    last = n % batch_size
    correct = random.randint(int(0.6 * n), int(0.9 * n))
    right = torch.zeros(n, dtype=torch.bool)
    right[n - last:] = True
    right[torch.randperm(n - last)[:correct - last]] = True
    y = torch.where(right, predictions,
                    (predictions + torch.randint(1, classes, (n,))) % classes)
    return model.train(), X, y, batch_size, correct / n


def check_evaluate(evaluate) -> None:
    random.seed(fresh_seed())  # problem sizes too, not only torch's draws
    expect_own_implementation(evaluate, "evaluate")
    what = "evaluate(model, loader, device)"
    for _ in range(2):
        model, X, y, batch_size, want = _evaluation_problem()
        before = copy.deepcopy(model.state_dict())
        seen = []  # (training flag, grad enabled) for every forward call of the model's layers
        def record(module, inputs, output, seen=seen):
            seen.append((module.training, torch.is_grad_enabled()))
        hooks = [m.register_forward_hook(record) for m in (model[1], model[3])]
        # the logits count as "on the device" until moved back to the host
        hooks.append(model.register_forward_hook(mark_device))
        device = DeviceResult.device_under_test = torch.device("cpu")
        record = start_record()
        try:
            got = evaluate(model, host_loader(X, y, batch_size), device)
        finally:
            for h in hooks:
                h.remove()
            DeviceResult.device_under_test = None
        _expect_moved(what, finish_record(record))
        got = _expect_number(got, what)
        expect(seen, f"{what} should run the model on the batches", "no forward pass",
               "model(X) for every batch")
        expect(not any(training for training, _ in seen),
               f"{what}: the model must be in eval mode (BatchNorm uses its running statistics, "
               "Dropout is off)", "train mode during the forward pass", "model.eval() first")
        expect(not any(grad for _, grad in seen),
               f"{what}: no gradients are needed to evaluate", "gradient tracking enabled",
               "torch.no_grad() or torch.inference_mode()")
        for name, value in model.state_dict().items():
            expect(torch.equal(value, before[name]), f"{what} must not change '{name}'",
                   "changed", "unchanged")
        sizes = [len(t) for t in torch.split(y, batch_size)]
        expect(abs(got - want) < 1e-6,
               f"{what}: accuracy (fraction of correctly classified examples, in [0, 1]; "
               f"batches of sizes {sizes})", f"{got:.6g}",
               f"{want:.6g} (error rate would be {1 - want:.6g})")


# ---------------------------------------------------------------------------------------------
# train_digits: reach a stated accuracy on held-out digits within a step budget
# ---------------------------------------------------------------------------------------------
TARGET_ACCURACY = 0.93  # held-out accuracy of the digits net; annealed schedules reach ~0.96
MAX_STEPS = 150  # training batches of 64 (about 7 epochs of 1,300 images)
BATCH_SIZE = 64
NUM_TRAIN = 1300


def digits_net() -> nn.Module:
    """The notebook's small conv net: (N, 1, 8, 8) -> (N, 10) logits."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),  # (N, 16, 8, 8)
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (N, 32, 4, 4)
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    data = load_digits()
    X = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    return X, torch.tensor(data.target)


def shuffled_host_loader(X, y, batch_size: int, generator: torch.Generator) -> DataLoader:
    """Like host_loader, reshuffled every epoch."""
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                      generator=generator, collate_fn=host_collate)


def secret_view(generator: torch.Generator):
    """A transformation of the 8x8 digits drawn at grading time, applied to the training and
    held-out digits alike, so that the held-out digits are data the student's process never had
    (the scikit-learn digits it can load are not what it is graded on): one of the 8 symmetries
    of the square and an optional inversion (never both the identity), then a fixed per-pixel
    gain in [0.75, 1.25] and offset in [-0.15, 0.15]. A conv net learns it as well as the raw
    digits (the solution and the correct variants: see the instructor guide)."""
    k = int(torch.randint(1, 16, (), generator=generator))  # 0 would be the identity
    turns, mirror, invert = k % 4, bool(k // 4 % 2), bool(k // 8)
    gain = 0.75 + 0.5 * torch.rand(8, 8, generator=generator)
    offset = 0.3 * torch.rand(8, 8, generator=generator) - 0.15

    def view(X: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, 1, 8, 8)
        X = torch.rot90(X, turns, dims=(-2, -1))
        X = X.flip(-1) if mirror else X
        X = 1.0 - X if invert else X
        return X * gain + offset
    return view


def check_train_digits(train_digits) -> None:
    random.seed(fresh_seed())
    expect_own_implementation(train_digits, "train_digits")
    raw, y = _digits()
    what = f"train_digits(model, train_loader, device, max_steps={MAX_STEPS})"
    modes = random.sample([True, False], 2)  # the model is handed over in either mode
    for run in range(2):  # two fresh splits and initialisations: a lucky run is not enough
        seed = random.randrange(2**31)
        generator = torch.Generator().manual_seed(seed)
        X = secret_view(generator)(raw)
        split = torch.randperm(len(y), generator=generator)
        train, held_out = split[:NUM_TRAIN], split[NUM_TRAIN:]
        torch.manual_seed(seed)
        model = digits_net().train(modes[run])
        loader = shuffled_host_loader(X[train], y[train], BATCH_SIZE, generator)
        record = start_record()
        # every forward call with gradients of any layer holding parameters, every optimizer
        # step (a copy of the model trained elsewhere counts too)
        with count_work() as work, quiet():
            train_digits(model, loader, torch.device("cpu"), MAX_STEPS)
        _expect_moved(what, finish_record(record))
        expect(not work.changed, f"{what}: the grader counts training steps with torch's "
               "global module and optimizer hooks", "they were taken off or bypassed",
               "the hooks left as they were")
        steps = _expect_within_budget(work, model, what)
        model.eval()
        with torch.no_grad():
            accuracy = (model(X[held_out]).argmax(dim=1) == y[held_out]).float().mean().item()
        expect(accuracy >= TARGET_ACCURACY,
               f"{what}, run {run + 1} of 2 (fresh split and initialisation, digits transformed "
               "at grading time): accuracy on "
               f"{len(held_out)} held-out digits after training (evaluated in eval mode)",
               f"{accuracy:.3f} after {steps} steps", f">= {TARGET_ACCURACY}")


def _expect_within_budget(work, model: nn.Module, what: str) -> int:
    """The work counted (instruments.Work) in passes of `model`: its layers holding parameters
    are called once per pass, and an optimizer step over it updates every parameter tensor.
    Work on copies of the model, or on any other module, counts the same. Returns the steps."""
    layers = sum(1 for m in model.modules() if any(p is not None for p in m._parameters.values()))
    tensors = len(list(model.parameters()))
    passes, updates = -(-work.calls // layers), -(-work.updates // tensors)  # rounded up
    expect(work.calls <= MAX_STEPS * layers and work.rows <= MAX_STEPS * BATCH_SIZE * layers
           and work.updates <= MAX_STEPS * tensors,
           f"{what}: training must stay within the budget (every forward pass with gradients "
           "and every optimizer step counts, on copies of the model too)",
           f"{passes} forward passes with gradients over {-(-work.rows // layers)} examples, "
           f"{updates} optimizer steps ({work.calls} calls of the net's {layers} layers with "
           f"parameters, {work.updates} updates of its {tensors} parameter tensors)",
           f"at most {MAX_STEPS} of each, over batches of {BATCH_SIZE}")
    return max(passes, updates)
