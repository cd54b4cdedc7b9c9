"""Plausible wrong and alternative correct answers for ex4_image_resnets.

WRONG[grade_id][name] is an answer-cell source that must lose the points of test_<grade_id>.
CORRECT[name] maps grade_ids to sources written differently from the solution; together with the
solution's other cells they must earn full marks. The setup cell provides `torch`, `nn` and
`F`; the ungraded answer cell `ex3_blocks` holds the student's Exercise 3 classes
(`ZeroPadShortcut`, `ProjectionShortcut`, `BasicBlock` with the added `residual` argument), which
resnet_cifar builds on: WRONG_EX3_BLOCKS are pasted versions that are wrong, and the
`ex3_blocks_written_differently` variant is a correct one written unlike the solution.
"""

# A correct resnet_cifar with one line swapped in; keeps each wrong variant to its one mistake.
_RESNET = '''
def resnet_cifar(depth, num_classes=10, shortcut="A", residual=True):
    if {check}:
        raise ValueError(f"depth must be 6n + 2 with n >= 1, got {{depth}}")
    if shortcut not in ("A", "B", "C"):
        raise ValueError(f"unknown shortcut {{shortcut!r}}")
    n = {n}
    layers = [nn.Conv2d(3, {w0}, 3, padding=1, bias=False), nn.BatchNorm2d({w0}), nn.ReLU()]
    in_channels = {w0}
    for stage, width in enumerate({widths}):
        for i in range(n):
            stride = {stride}
            layers.append(BasicBlock(in_channels, width, stride, shortcut, {residual}))
            in_channels = width
    layers += [{pool}, nn.Linear({features}, num_classes)]
    return nn.Sequential(*layers)
'''
_OK = dict(check="depth < 8 or (depth - 2) % 6 != 0", n="(depth - 2) // 6", w0="16",
           widths="(16, 32, 64)", stride="2 if stage > 0 and i == 0 else 1",
           residual="residual", pool="nn.AdaptiveAvgPool2d(1), nn.Flatten()", features="64")


def _resnet(**changes: str) -> str:
    return _RESNET.format(**{**_OK, **changes})


WRONG = {
    "count_parameters": {
        "ignores_trainable_only": '''
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters())
''',
        "counts_buffers": '''
def count_parameters(model, trainable_only=True):
    params = [p for p in model.parameters() if p.requires_grad or not trainable_only]
    return sum(p.numel() for p in params) + sum(b.numel() for b in model.buffers())
''',
        "counts_tensors": '''
def count_parameters(model, trainable_only=True):
    return len([p for p in model.parameters() if p.requires_grad or not trainable_only])
''',
        "counts_modules": '''
def count_parameters(model, trainable_only=True):
    return len(list(model.modules()))
''',
    },
    "resnet_cifar": {
        "n_from_depth_over_3": _resnet(n="(depth - 2) // 3"),
        "stride_2_every_stage": _resnet(stride="2 if i == 0 else 1"),
        "stride_2_at_stage_end": _resnet(stride="2 if stage > 0 and i == n - 1 else 1"),
        "plain_keeps_shortcuts": _resnet(residual="True"),
        "flatten_no_pool": _resnet(pool="nn.Flatten()", features="64 * 8 * 8"),
        "widths_32_64_128": _resnet(w0="32", widths="(32, 64, 128)", features="128"),
        "no_value_error": _resnet(check="False"),
        "imports_library": '''
def resnet_cifar(depth, num_classes=10, shortcut="A", residual=True):
    from resnet_course.models import resnet_cifar as library_resnet_cifar
    return library_resnet_cifar(depth, num_classes=num_classes, shortcut=shortcut,
                                residual=residual)
''',
    },
}

# count_macs: plausible mistakes (each loses the points of test_count_macs)
WRONG["count_macs"] = {
    "walks_modules": '''
def count_macs(model, input_size):
    """Counts every module once from the module list: misses the second call of a shared layer,
    counts layers forward never calls, and assumes convs keep the input size."""
    _, H, W = input_size
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            total += m.weight.numel() * H * W
        elif isinstance(m, nn.Linear):
            total += m.weight.numel()
    return total
''',
    "ignores_groups": '''
def count_macs(model, input_size):
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * module.in_channels * kh * kw
        else:
            total += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total
''',
    "batch_of_two": '''
def count_macs(model, input_size):
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += output.numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, *input_size))  # two inputs: twice the count
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total
''',
    "forward_in_train_mode": '''
def count_macs(model, input_size):
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += output[0].numel() * module.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.randn(2, *input_size))  # BatchNorm statistics change in train mode
    for h in hooks:
        h.remove()
    return total
''',
    "leaves_hooks": '''
def count_macs(model, input_size):
    counts = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(
                lambda module, i, o: counts.append(o.numel() * module.weight[0].numel()))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_size))
    model.train(was_training)
    return int(sum(counts))
''',
    # the output size from the kernel, stride and padding, without the dilation
    "ignores_dilation": '''
class MacCounter:
    """Counts with forward pre-hooks and the output size computed from the layer's settings."""

    def __init__(self):
        self.total = 0

    def __call__(self, module, inputs):
        x = inputs[0]
        if isinstance(module, nn.Linear):
            self.total += x[0].numel() // module.in_features * module.in_features * \\
                module.out_features
            return
        _, H, W = x.shape[1:]
        (kh, kw), (sh, sw) = module.kernel_size, module.stride
        (ph, pw), (dh, dw) = module.padding, module.dilation
        H_out = (H + 2 * ph - kh) // sh + 1
        W_out = (W + 2 * pw - kw) // sw + 1
        self.total += (module.out_channels * H_out * W_out
                       * module.in_channels // module.groups * kh * kw)


def count_macs(model, input_size):
    counter = MacCounter()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    handles = [m.register_forward_pre_hook(counter) for m in model.modules()
               if type(m) in (nn.Conv2d, nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.randn(3, *input_size))  # any batch size: the counter looks at one
    finally:
        for h in handles:
            h.remove()
        model.load_state_dict(state)  # undo BatchNorm's running-statistics update
    return int(counter.total)
''',
    # a Linear layer counted once per call, as if its input were always (N, in_features)
    "linear_once_per_call": '''
class MacCounter:
    """Counts with forward pre-hooks and the output size computed from the layer's settings."""

    def __init__(self):
        self.total = 0

    def __call__(self, module, inputs):
        x = inputs[0]
        if isinstance(module, nn.Linear):
            self.total += module.in_features * module.out_features
            return
        _, H, W = x.shape[1:]
        (kh, kw), (sh, sw) = module.kernel_size, module.stride
        (ph, pw), (dh, dw) = module.padding, module.dilation
        H_out = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        W_out = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        self.total += (module.out_channels * H_out * W_out
                       * module.in_channels // module.groups * kh * kw)


def count_macs(model, input_size):
    counter = MacCounter()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    handles = [m.register_forward_pre_hook(counter) for m in model.modules()
               if type(m) in (nn.Conv2d, nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.randn(3, *input_size))  # any batch size: the counter looks at one
    finally:
        for h in handles:
            h.remove()
        model.load_state_dict(state)  # undo BatchNorm's running-statistics update
    return int(counter.total)
''',
}

CORRECT = {
    "class_based": {
        "count_macs": '''
class MacCounter:
    """Counts with forward pre-hooks and the output size computed from the layer's settings."""

    def __init__(self):
        self.total = 0

    def __call__(self, module, inputs):
        x = inputs[0]
        if isinstance(module, nn.Linear):
            self.total += x[0].numel() // module.in_features * module.in_features * \\
                module.out_features
            return
        _, H, W = x.shape[1:]
        (kh, kw), (sh, sw) = module.kernel_size, module.stride
        (ph, pw), (dh, dw) = module.padding, module.dilation
        H_out = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        W_out = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        self.total += (module.out_channels * H_out * W_out
                       * module.in_channels // module.groups * kh * kw)


def count_macs(model, input_size):
    counter = MacCounter()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    handles = [m.register_forward_pre_hook(counter) for m in model.modules()
               if type(m) in (nn.Conv2d, nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.randn(3, *input_size))  # any batch size: the counter looks at one
    finally:
        for h in handles:
            h.remove()
        model.load_state_dict(state)  # undo BatchNorm's running-statistics update
    return int(counter.total)
''',
        "count_parameters": '''
def count_parameters(model, trainable_only=True):
    total = 0
    for name, p in model.named_parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += int(torch.tensor(p.shape).prod().item()) if p.dim() else 1
    return total
''',
        "resnet_cifar": '''
class CifarResNet(nn.Module):
    def __init__(self, n, num_classes, shortcut, residual):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.stage1 = self._stage(16, 16, n, 1, shortcut, residual)
        self.stage2 = self._stage(16, 32, n, 2, shortcut, residual)
        self.stage3 = self._stage(32, 64, n, 2, shortcut, residual)
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def _stage(in_channels, out_channels, n, stride, shortcut, residual):
        blocks = [BasicBlock(in_channels, out_channels, stride, shortcut, residual)]
        blocks += [BasicBlock(out_channels, out_channels, 1, shortcut, residual)
                   for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def resnet_cifar(depth, num_classes=10, shortcut="A", residual=True):
    n, rest = divmod(depth - 2, 6)
    if rest or n < 1:
        raise ValueError(f"depth must be 6n+2 (n >= 1); {depth} is not")
    if shortcut not in "ABC" or len(shortcut) != 1:
        raise ValueError(f"shortcut must be one of A, B, C, not {shortcut!r}")
    return CifarResNet(n, num_classes, shortcut, residual)
''',
    },
    "mean_pool_in_forward": {
        "count_macs": '''
import copy


def count_macs(model, input_size):
    twin = copy.deepcopy(model).eval()  # work on a copy: the original is never touched
    per_layer = []
    for layer in twin.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.register_forward_hook(lambda m, i, out: per_layer.append(
                out.shape[1:].numel() * m.weight.shape[1:].numel()))
    with torch.no_grad():
        twin(torch.rand(4, *input_size))  # four inputs; each hook counts one
    return sum(per_layer)
''',
        "count_parameters": '''
def count_parameters(model, trainable_only=True):
    params = model.parameters()
    if trainable_only:
        params = filter(lambda p: p.requires_grad, params)
    return sum(map(torch.numel, params))
''',
        "resnet_cifar": '''
class _Net(nn.Module):
    def __init__(self, blocks, num_classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))  # global average pooling


def resnet_cifar(depth, num_classes=10, shortcut="A", residual=True):
    valid = [6 * n + 2 for n in range(1, 100)]
    if depth not in valid:
        raise ValueError(f"depth {depth} is not of the form 6n + 2")
    if shortcut not in {"A", "B", "C"}:
        raise ValueError("shortcut must be 'A', 'B' or 'C'")
    n = (depth - 2) // 6
    plan = [16] * n + [32] * n + [64] * n
    blocks, previous = [], 16
    for width in plan:
        blocks.append(BasicBlock(previous, width, 2 if width != previous else 1,
                                 shortcut=shortcut, residual=residual))
        previous = width
    return _Net(blocks, num_classes)
''',
    },
    "avgpool_8": {
        "resnet_cifar": _resnet(pool="nn.AvgPool2d(8), nn.Flatten()"),
    },
    "ex3_blocks_written_differently": {
        "ex3_blocks": '''
class ZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("cannot pad to fewer channels")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        zeros = x.new_zeros(x.shape[0], self.out_channels - self.in_channels, *x.shape[2:])
        return torch.cat([zeros, x], dim=1)  # zeros in front: as good as behind


class ProjectionShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.bn = nn.BatchNorm2d(out_channels)  # registered first: order does not matter
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="A", residual=True):
        super().__init__()
        if shortcut not in "ABC" or len(shortcut) != 1:
            raise ValueError(f"unknown shortcut option {shortcut}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes_shape = stride != 1 or in_channels != out_channels
        if not residual:
            self.shortcut = None
        elif shortcut == "C" or (shortcut == "B" and changes_shape):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        elif changes_shape:
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential()  # an empty Sequential is the identity too

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out += self.shortcut(x)
        return torch.relu(out)
''',
    },
}

# Pasted Exercise 3 classes that are wrong: resnet_cifar (the solution's) must then fail its check
# with a message, not crash (tests/grader/checks/test_ex4.py). Each replaces the solution's
# BasicBlock.
WRONG_EX3_BLOCKS = {
    "no_residual_argument": '''
class BasicBlock(nn.Module):
    """Exercise 3's block pasted as it was: no `residual` argument."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        same = stride == 1 and in_channels == out_channels
        if shortcut == "C" or (shortcut == "B" and not same):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity() if same else ZeroPadShortcut(in_channels, out_channels,
                                                                       stride)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))
''',
    "residual_ignored": '''
class BasicBlock(nn.Module):
    """Accepts `residual` but always adds the shortcut: the plain twin is not plain."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A", residual=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        same = stride == 1 and in_channels == out_channels
        if shortcut == "C" or (shortcut == "B" and not same):
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity() if same else ZeroPadShortcut(in_channels, out_channels,
                                                                       stride)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))
''',
    "shortcut_shape_ignored": '''
class BasicBlock(nn.Module):
    """Always the identity shortcut: the forward pass fails where the shape changes."""

    def __init__(self, in_channels, out_channels, stride=1, shortcut="A", residual=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.residual = residual

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + x if self.residual else out)
''',
}
