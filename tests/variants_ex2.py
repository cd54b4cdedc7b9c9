"""Plausible wrong and alternative correct answers for ex2_identity (see variants_ex1.py)."""

_PREACT = '''
class PreActBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(features)
        self.linear1 = nn.Linear(features, features)
        self.bn2 = nn.BatchNorm1d(features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        FORWARD
'''

_PREACT_MLP = '''
def preact_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(LAYERS)
'''
_IN, _OUT = "nn.Linear(in_features, width)", "nn.Linear(width, num_classes)"
_BLOCKS = "*[PreActBlock(width) for _ in range(num_blocks)]"


def _preact(forward: str) -> str:
    return _PREACT.replace("FORWARD", forward)


def _preact_mlp(*layers: str) -> str:
    return _PREACT_MLP.replace("LAYERS", ", ".join(layers))


WRONG_PREACT = {
    "PreActBlock": {
        "relu_after_addition": _preact(
            "return F.relu(a + self.linear2(F.relu(self.bn2(self.linear1(F.relu(self.bn1(a)))))))"),
        "post_norm_order": _preact(  # Linear, BN, ReLU: the original ordering, not pre-activation
            "return a + F.relu(self.bn2(self.linear2(F.relu(self.bn1(self.linear1(a))))))"),
        "skip_from_activated_input": _preact(
            "h = F.relu(self.bn1(a))\n"
            "        return h + self.linear2(F.relu(self.bn2(self.linear1(h))))"),
        "bn2_unused": _preact(
            "return a + self.linear2(F.relu(self.linear1(F.relu(self.bn1(a)))))"),
    },
    "preact_mlp": {
        "no_final_norm": _preact_mlp(_IN, _BLOCKS, "nn.ReLU()", _OUT),
        "relu_after_input": _preact_mlp(_IN, "nn.ReLU()", _BLOCKS, "nn.BatchNorm1d(width)",
                                        "nn.ReLU()", _OUT),
        "norm_without_relu": _preact_mlp(_IN, _BLOCKS, "nn.BatchNorm1d(width)", _OUT),
        "norm_before_blocks": _preact_mlp(_IN, "nn.BatchNorm1d(width)", "nn.ReLU()", _BLOCKS,
                                          _OUT),
        # zero blocks are allowed (a negative number raises ValueError)
        "rejects_zero_blocks": _preact_mlp(_IN, _BLOCKS, "nn.BatchNorm1d(width)", "nn.ReLU()",
                                           _OUT).replace("if num_blocks < 0:",
                                                         "if num_blocks <= 0:"),
    },
}

WRONG = {
    "ResidualBlock": {
        "relu_before_addition": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        return F.relu(self.linear2(F.relu(self.linear1(a)))) + a
''',
        "no_skip": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        return F.relu(self.linear2(F.relu(self.linear1(a))))
''',
        "skip_from_hidden": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        h = F.relu(self.linear1(a))
        return F.relu(self.linear2(h) + h)
''',
        "modifies_input": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):
        a += self.linear2(F.relu(self.linear1(a)))
        return F.relu(a)
''',
        "no_bias": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features, bias=False)
        self.linear2 = nn.Linear(features, features, bias=False)

    def forward(self, a):
        return F.relu(self.linear2(F.relu(self.linear1(a))) + a)
''',
        "layers_swapped": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)

    def forward(self, a):  # linear2 first: zero_init_residual_ would zero the wrong layer
        return F.relu(self.linear1(F.relu(self.linear2(a))) + a)
''',
        "subclasses_library": '''
from resnet_course.models import ResidualBlock as LibraryBlock


class ResidualBlock(LibraryBlock):
    """Only a new name for the library's block."""
''',
    },
    "zero_init_residual_": {
        "zeroes_linear1": '''
def zero_init_residual_(block):
    nn.init.zeros_(block.linear1.weight)
    nn.init.zeros_(block.linear1.bias)
    return block
''',
        "weight_only": '''
def zero_init_residual_(block):
    with torch.no_grad():
        block.linear2.weight.zero_()
    return block
''',
        "returns_copy": '''
import copy


def zero_init_residual_(block):
    block = copy.deepcopy(block)
    with torch.no_grad():
        block.linear2.weight.zero_()
        block.linear2.bias.zero_()
    return block
''',
        "new_parameters": '''
def zero_init_residual_(block):
    block.linear2.weight = nn.Parameter(torch.zeros_like(block.linear2.weight))
    block.linear2.bias = nn.Parameter(torch.zeros_like(block.linear2.bias))
    return block
''',
    },
    "residual_mlp": {
        "wrong_block_count": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[ResidualBlock(width) for _ in range(num_blocks + 1)],
                         nn.Linear(width, num_classes))
''',
        "missing_final_linear": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[ResidualBlock(width) for _ in range(num_blocks)])
''',
        "no_relu_after_input": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(nn.Linear(in_features, width),
                         *[ResidualBlock(width) for _ in range(num_blocks)],
                         nn.Linear(width, num_classes))
''',
        # zero blocks are allowed: a plain 2-layer network
        "rejects_zero_blocks": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 1:
        raise ValueError("num_blocks must be >= 1")
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[ResidualBlock(width) for _ in range(num_blocks)],
                         nn.Linear(width, num_classes))
''',
        "at_least_one_block": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[ResidualBlock(width) for _ in range(max(num_blocks, 1))],
                         nn.Linear(width, num_classes))
''',
        "relu_on_logits": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[ResidualBlock(width) for _ in range(num_blocks)],
                         nn.Linear(width, num_classes), nn.ReLU())
''',
        "shared_block": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if num_blocks < 0:
        raise ValueError("num_blocks must be >= 0")
    block = ResidualBlock(width)  # one block reused: its weights are shared
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(),
                         *[block for _ in range(num_blocks)],
                         nn.Linear(width, num_classes))
''',
    },
}

WRONG.update(WRONG_PREACT)

CORRECT = {
    "module_style": {
        "ResidualBlock": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear1 = nn.Linear(features, features)
        self.relu = nn.ReLU(inplace=True)
        self.linear2 = nn.Linear(features, features)

    def residual(self, a):
        """The branch F(a); an extra helper method is fine."""
        return self.linear2(self.relu(self.linear1(a)))

    def forward(self, a):
        out = self.residual(a)
        out += a  # in place on a new tensor, not on the input
        return self.relu(out)
''',
        "zero_init_residual_": '''
def zero_init_residual_(block):
    with torch.no_grad():
        block.linear2.weight.fill_(0.0)
        block.linear2.bias.mul_(0.0)
    return block
''',
        "residual_mlp": '''
class ResidualMLP(nn.Module):
    def __init__(self, in_features, width, num_blocks, num_classes):
        super().__init__()
        if num_blocks < 0:
            raise ValueError(f"negative num_blocks: {num_blocks}")
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(num_blocks))
        self.head = nn.Linear(width, num_classes)

    def forward(self, X):
        h = torch.relu(self.stem(X))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def residual_mlp(in_features, width, num_blocks, num_classes):
    return ResidualMLP(in_features, width, num_blocks, num_classes)
''',
    },
    "sequential_style": {
        "PreActBlock": '''
class PreActBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm1d(features), nn.BatchNorm1d(features)
        self.linear1, self.linear2 = nn.Linear(features, features), nn.Linear(features, features)
        self.residual = nn.Sequential(self.bn1, nn.ReLU(), self.linear1, self.bn2, nn.ReLU(),
                                      self.linear2)

    def forward(self, a):
        out = self.residual(a)
        out += a  # in place on the branch's new tensor, not on the input
        return out
''',
        "preact_mlp": '''
def preact_mlp(in_features, width, num_blocks, num_classes):
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError("num_blocks must be a non-negative integer")
    model = nn.Sequential(nn.Linear(in_features, width))
    for _ in range(num_blocks):
        model.append(PreActBlock(width))
    head = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                         nn.Linear(width, num_classes))
    return model.append(head)
''',
        "ResidualBlock": '''
import warnings


class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        warnings.warn("building a block")  # a warning must not cost points
        self.linear1 = nn.Linear(features, features)
        self.linear2 = nn.Linear(features, features)
        self.branch = nn.Sequential(self.linear1, nn.ReLU(), self.linear2)

    def forward(self, a):
        return torch.clamp(self.branch(a) + a, min=0)
''',
        "zero_init_residual_": '''
def zero_init_residual_(block):
    for p in block.linear2.parameters():
        p.data.zero_()
    return block
''',
        "residual_mlp": '''
def residual_mlp(in_features, width, num_blocks, num_classes):
    if not isinstance(num_blocks, int) or num_blocks < 0:
        raise ValueError("num_blocks must be a non-negative integer")
    model = nn.Sequential()
    model.append(nn.Linear(in_features, width))
    model.append(nn.ReLU())
    for _ in range(num_blocks):
        model.append(ResidualBlock(width))
    model.append(nn.Linear(width, num_classes))
    return model
''',
    },
    "reversed_registration": {
        "PreActBlock": '''
class PreActBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear2 = nn.Linear(features, features)  # registered in another order
        self.bn2 = nn.BatchNorm1d(features)
        self.linear1 = nn.Linear(features, features)
        self.bn1 = nn.BatchNorm1d(features)
        self.act = nn.ReLU()

    def branch(self, a):
        return self.linear2(self.act(self.bn2(self.linear1(self.act(self.bn1(a))))))

    def forward(self, a):
        return self.branch(a).add(a)
''',
        "preact_mlp": '''
class PreActMLP(nn.Module):
    def __init__(self, in_features, width, num_blocks, num_classes):
        super().__init__()
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        self.classifier = nn.Linear(width, num_classes)  # registered first, called last
        self.final_norm = nn.BatchNorm1d(width)
        self.blocks = nn.ModuleList([PreActBlock(width) for _ in range(num_blocks)])
        self.embed = nn.Linear(in_features, width)

    def forward(self, X):
        h = self.embed(X)
        for block in self.blocks:
            h = block(h)
        return self.classifier(torch.relu(self.final_norm(h)))


def preact_mlp(in_features, width, num_blocks, num_classes):
    return PreActMLP(in_features, width, num_blocks, num_classes)
''',
        # linear2 is created (registered) before linear1: only the names say which is which
        "ResidualBlock": '''
class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear2 = nn.Linear(features, features)
        self.linear1 = nn.Linear(features, features)

    def forward(self, a):
        return F.relu(a + self.linear2(F.relu(self.linear1(a))))
''',
        "residual_mlp": '''
class ResidualMLP(nn.Module):
    def __init__(self, in_features, width, num_blocks, num_classes):
        super().__init__()
        if num_blocks < 0:
            raise ValueError(f"num_blocks must be >= 0, got {num_blocks}")
        self.head = nn.Linear(width, num_classes)  # registered first, called last
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(num_blocks))
        self.stem = nn.Linear(in_features, width)

    def forward(self, X):
        h = F.relu(self.stem(X))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def residual_mlp(in_features, width, num_blocks, num_classes):
    return ResidualMLP(in_features, width, num_blocks, num_classes)
''',
    },
}
