"""Plausible wrong and alternative correct answers for ex5_gpu_training.

WRONG[grade_id][name] is an answer-cell source that must lose the points of test_<grade_id>.
CORRECT[name] maps grade_ids to sources written differently from the solution; together with the
solution's other cells they must earn full marks. The notebook's given cell imports `time`,
`torch`, `F`, `nn`, `DataLoader` and `TensorDataset`.
"""

# A correct train_one_epoch with one part swapped in; each wrong variant has one mistake.
_TRAIN = '''
def train_one_epoch(model, loader, optimizer, device, amp=False):
    {mode}
    total_loss, num_examples = 0.0, 0
    for X, y in loader:
        {move}
        {zero}
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled={amp}):
            loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        total_loss += {add}
        num_examples += len(y)
    return {result}
'''
_TRAIN_OK = dict(mode="model.train()", move="X, y = X.to(device), y.to(device)",
                 zero="optimizer.zero_grad()", amp="amp", add="loss.item() * len(y)",
                 result="total_loss / num_examples")


def _train(**changes: str) -> str:
    return _TRAIN.format(**{**_TRAIN_OK, **changes})


_EVALUATE = '''
def evaluate(model, loader, device):
    {mode}
    correct, total = 0, 0
    {context}
        for X, y in loader:
            {move}
            correct += (model(X).argmax(dim=1) == y).sum().item()
            total += len(y)
    return {result}
'''
_EVALUATE_OK = dict(mode="model.eval()", context="with torch.no_grad():",
                    move="X, y = X.to(device), y.to(device)", result="correct / total")


def _evaluate(**changes: str) -> str:
    return _EVALUATE.format(**{**_EVALUATE_OK, **changes})


WRONG = {
    "pick_device": {
        "always_cpu": '''
def pick_device():
    return torch.device("cpu")
''',
        "prefers_mps": '''
def pick_device():
    if torch.backends.mps.is_available():
        return torch.device("mps")
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
''',
        "ignores_mps": '''
def pick_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
''',
        "returns_string": '''
def pick_device():
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"
''',
    },
    "train_one_epoch": {
        "mean_of_batch_means": _train(add="loss.item()", result="total_loss / len(loader)"),
        "no_zero_grad": _train(zero="pass"),
        "stays_in_eval_mode": _train(mode="pass"),
        "batches_not_moved": _train(move="pass"),
        "ignores_amp": _train(amp="False"),
        # batches not moved, and the grader's record of that erased (issue 21): fails like the
        # honest batches_not_moved, not as "every batch moved"
        "erases_the_record": _train(move="pass").replace(
            "    return total_loss / num_examples",
            "    type(X).used_unmoved.clear()  # the batch class's record of unmoved uses\n"
            "    return total_loss / num_examples"),
    },
    "evaluate": {
        "train_mode": _evaluate(mode="pass"),
        "returns_error_rate": _evaluate(result="1 - correct / total"),
        "with_gradients": _evaluate(context="if True:"),
        "mean_of_batch_accuracies": '''
def evaluate(model, loader, device):
    model.eval()
    accuracies = []
    with torch.no_grad():
        for X, y in loader:
            X, y = X.to(device), y.to(device)
            accuracies.append((model(X).argmax(1) == y).float().mean().item())
    return sum(accuracies) / len(accuracies)
''',
        "batches_not_moved": _evaluate(move="pass"),
        # inputs moved, labels not: predictions on the device meet labels on the host
        "labels_not_moved": _evaluate(move="X = X.to(device)"),
    },
}

# train_digits: a loop that is right in every way but the one named
_DIGITS = '''
def train_digits(model, train_loader, device, max_steps):
    optimizer = OPTIMIZER
    model.train()
    step = 0
    while step < LIMIT:
        for X, y in BATCHES:
            MOVE
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
            step += 1
            if step == LIMIT:
                break
    return model
'''
_DIGITS_OK = {"OPTIMIZER": "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)",
              "LIMIT": "max_steps", "BATCHES": "train_loader",
              "MOVE": "X, y = X.to(device), y.to(device)"}


def _digits(**changes: str) -> str:
    source = _DIGITS
    for key, value in {**_DIGITS_OK, **changes}.items():
        source = source.replace(key, value)
    return source


# scikit-learn's digits, all 1,797 (the grader's held-out digits among them, untransformed)
_PUBLIC = '''
from sklearn.datasets import load_digits


def public_digits_loader():
    data = load_digits()
    X = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return DataLoader(TensorDataset(X, torch.tensor(data.target)), batch_size=64, shuffle=True)
'''

# train_digits won by training elsewhere (issue 20): a hook-free copy of the model trained for
# 4x the budget on all 1,797 scikit-learn digits (the grader's held-out digits among them), the
# weights copied back. It used to score 4/4: the budget was counted by a hook on the model
# handed in, and the held-out digits were the public ones.
ELSEWHERE = _PUBLIC + '''
import copy


def train_digits(model, train_loader, device, max_steps):
    twin = copy.deepcopy(model)
    twin._forward_pre_hooks.clear()  # the grader's step counter stays on `model` only
    twin.train()
    loader = public_digits_loader()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.2, momentum=0.9)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.2, total_steps=4 * max_steps)
    step = 0
    while step < 4 * max_steps:
        for Xb, yb in loader:
            optimizer.zero_grad()
            F.cross_entropy(twin(Xb), yb).backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == 4 * max_steps:
                break
    model.load_state_dict(twin.state_dict())
    return model
'''

# The same training with no module and no optimizer (torch.nn.functional and a hand-written
# SGD step on the copy's tensors): the counting hooks see nothing; the digits it trains on are
# not the ones it is graded on.
UNCOUNTED = ELSEWHERE.replace('''\
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.2, momentum=0.9)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.2, total_steps=4 * max_steps)
''', '''    params = [p.detach().clone().requires_grad_(True) for p in twin.parameters()]
    buffers = [b.clone() for b in twin.buffers()]
''').replace('''            optimizer.zero_grad()
            F.cross_entropy(twin(Xb), yb).backward()
            optimizer.step()
            schedule.step()
''', '''            w1, b1, g1, c1, w2, b2, g2, c2, w3, b3 = params
            h = F.conv2d(Xb, w1, b1, padding=1)
            h = F.relu(F.batch_norm(h, buffers[0], buffers[1], g1, c1, training=True))
            h = F.conv2d(h, w2, b2, stride=2, padding=1)
            h = F.relu(F.batch_norm(h, buffers[3], buffers[4], g2, c2, training=True))
            loss = F.cross_entropy(F.linear(h.mean(dim=(2, 3)), w3, b3), yb)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= 0.1 * g
''').replace('''    model.load_state_dict(twin.state_dict())''', '''    with torch.no_grad():
        for p, q in zip(model.parameters(), params):
            p.copy_(q)
        for b, c in zip(model.buffers(), buffers):
            b.copy_(c)''')


WRONG["train_digits"] = {
    # far too timid for 150 steps: about 0.3 held-out accuracy
    "small_constant_lr": _digits(OPTIMIZER="torch.optim.SGD(model.parameters(), lr=0.01)"),
    "over_budget": _digits(LIMIT="10 * len(train_loader)"),  # 10 epochs: about 210 steps
    "batches_not_moved": _digits(MOVE="pass"),
    # the same 64 digits every step: memorised, not learned
    "first_batch_only": _digits(BATCHES="[next(iter(train_loader))] * max_steps"),
    # within the budget, but on scikit-learn's digits instead of the loader's: the task says to
    # train on train_loader only (the grader's digits are transformed at grading time)
    "trains_on_public_digits": _PUBLIC + '''

def train_digits(model, train_loader, device, max_steps):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.2, total_steps=max_steps)
    model.train()
    step = 0
    while step < max_steps:
        for X, y in public_digits_loader():  # not train_loader
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            F.cross_entropy(model(X), y).backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == max_steps:
                break
    return model
''',
    "trains_a_copy_elsewhere": ELSEWHERE,
    "learns_public_digits_uncounted": UNCOUNTED,
}

CORRECT = {
    "sum_reduction_and_decorator": {
        "train_digits": '''
def train_digits(model, train_loader, device, max_steps):
    # Nesterov momentum, the rate decayed linearly to zero over the budget
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True)
    decay = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.0, total_iters=max_steps)
    model.train()
    batches = (batch for _ in range(max_steps) for batch in train_loader)
    for _, (X, y) in zip(range(max_steps), batches):
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
        decay.step()
''',
        "pick_device": '''
def pick_device():
    for name, available in [("cuda", torch.cuda.is_available),
                            ("mps", torch.backends.mps.is_available)]:
        if available():
            return torch.device(name)
    return torch.device("cpu")
''',
        "train_one_epoch": '''
import contextlib

def train_one_epoch(model, loader, optimizer, device, amp=False):
    model.train()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    loss_sum = 0.0
    for X, y in loader:
        X = X.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        model.zero_grad(set_to_none=True)
        context = (torch.autocast(device.type, dtype=torch.bfloat16) if amp
                   else contextlib.nullcontext())
        with context:
            batch_loss = criterion(model(X), y)  # summed over the batch
        (batch_loss / X.size(0)).backward()
        optimizer.step()
        loss_sum += batch_loss.item()
    return loss_sum / len(loader.dataset)
''',
        "evaluate": '''
@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    hits = 0
    for inputs, targets in loader:
        logits = model(inputs.to(device))
        hits += int(logits.argmax(-1).eq(targets.to(device)).sum())
    return hits / len(loader.dataset)
''',
    },
    "inference_mode_and_running_mean": {
        "train_digits": '''
import itertools
import math


def train_digits(model, train_loader, device, max_steps):
    # cosine decay by hand; held-out accuracy is not known here, only the training loss
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    batches = itertools.islice(itertools.cycle(train_loader), max_steps)
    for step, (X, y) in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = 0.05 * (1 + math.cos(math.pi * step / max_steps))
        X, y = X.to(device), y.to(device)
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()  # handing it back in eval mode is fine
    return model
''',
        "pick_device": '''
def pick_device():
    name = ("cuda:0" if torch.cuda.is_available()
            else "mps" if torch.backends.mps.is_available() else "cpu")
    return torch.device(name)
''',
        "train_one_epoch": '''
def train_one_epoch(model, loader, optimizer, device, amp=False):
    model.train(True)
    mean, seen = 0.0, 0
    for batch in loader:
        X, y = (t.to(device) for t in batch)
        optimizer.zero_grad()
        with torch.autocast(device.type, torch.bfloat16, enabled=bool(amp)):
            logits = model(X)
            loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        seen += y.shape[0]
        mean += (loss.item() - mean) * y.shape[0] / seen  # running mean per example
    return float(mean)
''',
        "evaluate": '''
def evaluate(model, loader, device):
    model.eval()
    predictions, labels = [], []
    with torch.inference_mode():
        for X, y in loader:
            predictions.append(model(X.float().to(device)).argmax(dim=1))
            labels.append(y.long().to(device))
    return (torch.cat(predictions) == torch.cat(labels)).float().mean().item()
''',
    },
    "host_side_comparison_and_device_sum": {
        # the device-generic API of recent PyTorch versions
        "pick_device": '''
def pick_device():
    accelerator = torch.accelerator.current_accelerator(check_available=True)
    return accelerator if accelerator is not None else torch.device("cpu")
''',
        # the loss is summed on the device (loss.detach(), one .item() at the end, as the GPU
        # chapter advises); evaluate moves only the inputs and compares predictions brought back
        # to the host with the labels left there
        "train_one_epoch": '''
def train_one_epoch(model, loader, optimizer, device, amp=False):
    model.train()
    total = torch.zeros((), device=device)
    count = 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)  # stays on the device: no sync per step
        count += len(y)
    return (total / count).item()
''',
        "evaluate": '''
def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for X, y in loader:
            predictions = model(X.to(device)).argmax(dim=1).cpu()  # back to the host
            correct += (predictions == y).sum().item()  # y never left the host
            total += y.numel()
    return correct / total
''',
    },
    # the net called through .forward (its layers are then called one by one) and two
    # optimizers over disjoint parameters, each stepped once per batch: 150 steps all the same
    "forward_method_and_two_optimizers": {
        "train_digits": '''
def train_digits(model, train_loader, device, max_steps):
    convs = [p for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters()]
    others = [p for p in model.parameters() if all(p is not q for q in convs)]
    optimizers = [torch.optim.SGD(convs, lr=0.2, momentum=0.9),
                  torch.optim.SGD(others, lr=0.2, momentum=0.9)]
    schedules = [torch.optim.lr_scheduler.OneCycleLR(o, 0.2, total_steps=max_steps)
                 for o in optimizers]
    model.train()
    step = 0
    while step < max_steps:
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            for optimizer in optimizers:
                optimizer.zero_grad()
            F.cross_entropy(model.forward(X), y).backward()
            for optimizer, schedule in zip(optimizers, schedules):
                optimizer.step()
                schedule.step()
            step += 1
            if step == max_steps:
                break
    return model
''',
    },
}
