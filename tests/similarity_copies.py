"""Disguised copies, written by hand, that the similarity report must find (tests/test_similarity).

Each is what a student might hand in after copying: identifiers renamed, independent statements
reordered, the layout and the comments changed, type annotations dropped or added. COPIES maps a
name to (assignment, answer cell, what was copied, the disguised cell). What was copied is
("library", "<file in src/resnet_course>"), ("solution", "") or ("student", "<variant>") for
CORRECT[<variant>] of tests/variants_<ex>.py, the answer of another, honest student.
"""

# src/resnet_course/models.py: BasicBlock with conv3x3 and make_shortcut pasted into the cell.
LIBRARY_BASIC_BLOCK = '''
def three_by_three(c_in, c_out, step=1):
    return nn.Conv2d(c_in, c_out, 3, stride=step, padding=1, bias=False)


def pick_shortcut(c_in, c_out, step, kind="A"):
    kind = kind.upper() if isinstance(kind, str) else kind
    if kind not in ("A", "B", "C"):
        raise ValueError(f"unknown shortcut option {kind!r}")
    same = c_in == c_out and step == 1
    if kind == "C":
        return ProjectionShortcut(c_in, c_out, step)
    if same:
        return nn.Identity()
    if kind == "A":
        return ZeroPadShortcut(c_in, c_out, step)
    return ProjectionShortcut(c_in, c_out, step)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A", residual=True):
        super().__init__()
        self.residual = bool(residual)
        self.bn1 = nn.BatchNorm2d(out_channels)   # my own order
        self.conv1 = three_by_three(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = three_by_three(out_channels, out_channels)
        self.shortcut = (pick_shortcut(in_channels, out_channels, stride, shortcut)
                         if self.residual else None)

    def forward(self, inp):
        # main branch
        h = F.relu(self.bn1(self.conv1(inp)))
        h = self.bn2(self.conv2(h))
        if self.residual:
            h = h + self.shortcut(inp)
        return F.relu(h)
'''

# src/resnet_course/models.py: plain_mlp and its argument check, reformatted.
LIBRARY_PLAIN_MLP = '''
def _positive(label, v, lowest=1):
    if not isinstance(v, int) or isinstance(v, bool) or v < lowest:
        raise ValueError(f"{label} should be an int >= {lowest}, not {v!r}")
    return v


def plain_mlp(in_features, width, depth, num_classes):
    _positive("in_features", in_features); _positive("width", width)
    _positive("depth", depth); _positive("num_classes", num_classes)
    if depth == 1:
        return nn.Sequential(nn.Linear(in_features, num_classes))
    mods = [nn.Linear(in_features, width), nn.ReLU()]
    for _ in range(depth - 2):
        mods += [nn.Linear(width, width), nn.ReLU()]
    mods.append(nn.Linear(width, num_classes))
    return nn.Sequential(*mods)
'''

# src/resnet_course/train.py: train_one_epoch and the two helpers it calls, pasted together,
# renamed, annotations dropped, zero_grad moved up, comments changed.
LIBRARY_TRAIN_ONE_EPOCH = '''
import contextlib


def cast_ctx(dev, on):
    if not on:
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=torch.bfloat16)


def move(inputs, targets, dev, cl):
    inputs = inputs.to(dev, non_blocking=True)
    if cl and inputs.ndim == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, targets.to(dev, non_blocking=True)


def train_one_epoch(model, loader, optimizer, device, amp=False, channels_last=False,
                    step_losses=None):
    device = torch.device(device)
    model.train()
    running, seen, history = None, 0, []
    for inputs, targets in loader:
        optimizer.zero_grad(set_to_none=True)  # clear old gradients first
        inputs, targets = move(inputs, targets, device, channels_last)
        with cast_ctx(device, amp):
            out = model(inputs)
            batch_loss = F.cross_entropy(out, targets)
        batch_loss.backward()
        optimizer.step()
        part = batch_loss.detach().float() * len(targets)
        running = part if running is None else running + part
        seen += len(targets)
        history.append(batch_loss.detach().float())
    if seen == 0:
        raise ValueError("empty loader")
    if step_losses is not None:
        step_losses.extend(torch.stack(history).tolist())
    return running.item() / seen
'''

# solutions/ex5_gpu_training: evaluate, renamed and restyled.
SOLUTION_EVALUATE = '''
import torch as T


def evaluate(net, batches, dev):
    net.eval()
    hits = 0
    n = 0
    with T.no_grad():
        for xb, yb in batches:
            xb, yb = xb.to(dev), yb.to(dev)
            guess = net(xb).argmax(dim=1)
            hits += (guess == yb).sum().item()
            n += len(yb)
    return hits / n
'''

# Another student: tests/variants_ex4.py CORRECT["class_based"]["resnet_cifar"].
STUDENT_RESNET_CIFAR = '''
class Net(nn.Module):
    """ResNet for CIFAR (my implementation)."""

    def __init__(self, blocks_per_stage, n_out, sc, res):
        super().__init__()
        self.stem_bn = nn.BatchNorm2d(16)
        self.stem_conv = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.s1 = self.make(16, 16, blocks_per_stage, 1, sc, res)
        self.s2 = self.make(16, 32, blocks_per_stage, 2, sc, res)
        self.s3 = self.make(32, 64, blocks_per_stage, 2, sc, res)
        self.head = nn.Linear(64, n_out)

    @staticmethod
    def make(cin, cout, count, first_stride, sc, res):
        layers = [BasicBlock(cin, cout, first_stride, sc, res)]
        layers += [BasicBlock(cout, cout, 1, sc, res) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def forward(self, img):
        out = F.relu(self.stem_bn(self.stem_conv(img)))
        out = self.s3(self.s2(self.s1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.head(out)


def resnet_cifar(depth, num_classes=10, shortcut="A", residual=True):
    # depth = 6n + 2
    count, extra = divmod(depth - 2, 6)
    if extra or count < 1:
        raise ValueError(f"bad depth {depth}: need 6n+2")
    if shortcut not in "ABC" or len(shortcut) != 1:
        raise ValueError(f"bad shortcut {shortcut!r}")
    return Net(count, num_classes, shortcut, residual)
'''

# Another student: tests/variants_ex2.py CORRECT["module_style"]["residual_mlp"].
STUDENT_RESIDUAL_MLP = '''
class Model(nn.Module):

    def __init__(self, n_in, hidden, n_blocks, n_out):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks is negative: {n_blocks}")
        self.inp = nn.Linear(n_in, hidden)
        self.body = nn.ModuleList(ResidualBlock(hidden) for i in range(n_blocks))
        self.out = nn.Linear(hidden, n_out)

    def forward(self, inputs):
        z = torch.relu(self.inp(inputs))
        for b in self.body:
            z = b(z)
        return self.out(z)


def residual_mlp(in_features, width, num_blocks, num_classes):
    model = Model(in_features, width, num_blocks, num_classes)
    return model
'''

# src/resnet_course/models.py: ZeroPadShortcut with the argument check it calls, the checks
# reordered, one-line `if`, f-string reworded, the docstring and comments gone.
LIBRARY_ZERO_PAD = '''
def check(what, value, least=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{what} must be an int >= {least}, got {value!r}")
    return value


class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        check("in_channels", in_channels)
        check("stride", stride)
        check("out_channels", out_channels)
        if out_channels < in_channels: raise ValueError(
            f"cannot remove channels: {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, inp):
        inp = inp[:, :, ::self.stride, ::self.stride]
        return F.pad(inp, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"
'''

COPIES = {
    "library_basic_block": ("ex3_shortcuts", "BasicBlock", ("library", "models.py"),
                            LIBRARY_BASIC_BLOCK),
    "library_zero_pad": ("ex3_shortcuts", "ZeroPadShortcut", ("library", "models.py"),
                         LIBRARY_ZERO_PAD),
    "library_plain_mlp": ("ex1_degradation", "plain_mlp", ("library", "models.py"),
                          LIBRARY_PLAIN_MLP),
    "library_train_one_epoch": ("ex5_gpu_training", "train_one_epoch", ("library", "train.py"),
                                LIBRARY_TRAIN_ONE_EPOCH),
    "solution_evaluate": ("ex5_gpu_training", "evaluate", ("solution", ""), SOLUTION_EVALUATE),
    "student_resnet_cifar": ("ex4_image_resnets", "resnet_cifar", ("student", "class_based"),
                             STUDENT_RESNET_CIFAR),
    "student_residual_mlp": ("ex2_identity", "residual_mlp", ("student", "module_style"),
                             STUDENT_RESIDUAL_MLP),
}
