"""Plausible wrong and alternative correct answers for ex1_degradation.

WRONG[grade_id][name] is an answer-cell source that must lose the points of test_<grade_id>.
CORRECT[name] maps grade_ids to sources written differently from the solution; together with the
solution's other cells they must earn full marks.
"""

WRONG = {
    "plain_mlp": {
        "relu_after_last": '''
def plain_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth must be at least 1")
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers = []
    for i in range(depth):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)
''',
        "depth_counts_hidden_only": '''
def plain_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth must be at least 1")
    layers = [nn.Linear(in_features, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
''',
        "no_relu": '''
def plain_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth must be at least 1")
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    return nn.Sequential(*[nn.Linear(sizes[i], sizes[i + 1]) for i in range(depth)])
''',
        "no_value_error": '''
def plain_mlp(in_features, width, depth, num_classes):
    sizes = [in_features] + [width] * max(depth - 1, 0) + [num_classes]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
''',
        "imports_library": '''
def plain_mlp(in_features, width, depth, num_classes):
    from resnet_course.models import plain_mlp as library_plain_mlp
    return library_plain_mlp(in_features, width, depth, num_classes)
''',
    },
    "training_error": {
        "returns_accuracy": '''
def training_error(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    return (predictions == y).float().mean().item()
''',
        "leaves_eval_mode": '''
def training_error(model, X, y):
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    return (predictions != y).float().mean().item()
''',
        "per_batch_mean": '''
def training_error(model, X, y, batch_size=32):
    was_training = model.training
    model.eval()
    errors = []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            logits = model(X[start:start + batch_size])
            errors.append((logits.argmax(1) != y[start:start + batch_size]).float().mean().item())
    model.train(was_training)
    return sum(errors) / len(errors)
''',
        "tracks_gradients": '''
def training_error(model, X, y):
    was_training = model.training
    model.eval()
    predictions = model(X).argmax(dim=1)
    model.train(was_training)
    return (predictions != y).float().mean().item()
''',
        "returns_tensor": '''
def training_error(model, X, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predictions = model(X).argmax(dim=1)
    model.train(was_training)
    return (predictions != y).float().mean()
''',
    },
    "layer_gradient_norms": {
        "output_side_first": '''
def layer_gradient_norms(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    norms = [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]
    return norms[::-1]
''',
        "optimizer_step": '''
def layer_gradient_norms(model, X, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    F.cross_entropy(model(X), y).backward()
    optimizer.step()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]
''',
        "bias_gradients": '''
def layer_gradient_norms(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [m.bias.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]
''',
        "sum_loss": '''
def layer_gradient_norms(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y, reduction="sum").backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]
''',
        "all_parameters": '''
def layer_gradient_norms(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [p.grad.norm().item() for p in model.parameters()]
''',
    },
}

# plain_bn_mlp: the solution's loop with one part swapped in
_BN_MLP = '''
def plain_bn_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth must be at least 1")
    sizes = [in_features] + [width] * (depth - 1) + [num_classes]
    layers = []
    for i in range(depth):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        if i < depth - 1:
            INIT
            layers += HIDDEN
        else:
            layers += LAST
    return nn.Sequential(*layers)
'''
_BN_MLP_OK = {"INIT": 'nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")',
              "HIDDEN": "[linear, nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()]",
              "LAST": "[linear]"}


def _bn_mlp(**changes: str) -> str:
    source = _BN_MLP
    for key, value in {**_BN_MLP_OK, **changes}.items():
        source = source.replace(key, value)
    return source


WRONG["plain_bn_mlp"] = {
    "default_init": _bn_mlp(INIT="pass"),  # PyTorch's default: std about 0.58 of He's
    "xavier_init": _bn_mlp(INIT="nn.init.xavier_normal_(linear.weight)"),
    "gain_of_linear": _bn_mlp(  # He's formula without the factor 2 of the ReLU
        INIT='nn.init.kaiming_normal_(linear.weight, nonlinearity="linear")'),
    # He's rule applied to some layers only, or with the wrong fan: pooled over all layers,
    # the many width x width weights hide the first layer
    "he_skips_first_layer": _bn_mlp(
        INIT='nn.init.kaiming_normal_(linear.weight, nonlinearity="relu") if i > 0 else None'),
    "he_fan_out": _bn_mlp(
        INIT='nn.init.kaiming_normal_(linear.weight, mode="fan_out", nonlinearity="relu")'),
    "batchnorm_after_relu": _bn_mlp(HIDDEN="[linear, nn.ReLU(), nn.BatchNorm1d(sizes[i + 1])]"),
    "batchnorm_on_logits": _bn_mlp(LAST="[linear, nn.BatchNorm1d(sizes[i + 1])]"),
}

CORRECT = {
    "functional_style": {
        "plain_bn_mlp": '''
import math


class PlainBN(nn.Module):
    """Registered in another order than called; He init by hand, uniform; biases kept at 0."""

    def __init__(self, in_features, width, depth, num_classes):
        super().__init__()
        if depth < 1:
            raise ValueError(f"need depth >= 1, got {depth}")
        self.head = nn.Linear(width if depth > 1 else in_features, num_classes)
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(depth - 1))
        self.hidden = nn.ModuleList(
            nn.Linear(in_features if i == 0 else width, width) for i in range(depth - 1))
        for layer in self.hidden:
            bound = math.sqrt(3.0) * math.sqrt(2.0 / layer.in_features)  # U(-b, b): var 2/n
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)

    def forward(self, X):
        for layer, norm in zip(self.hidden, self.norms):
            X = F.relu(norm(layer(X)))
        return self.head(X)


def plain_bn_mlp(in_features, width, depth, num_classes):
    return PlainBN(in_features, width, depth, num_classes)
''',
        "plain_mlp": '''
class _Layers(nn.Sequential):
    """Same layers, a different way to build them."""


def plain_mlp(in_features, width, depth, num_classes):
    if not depth >= 1:
        raise ValueError(f"need at least one layer, got depth={depth}")
    if depth == 1:
        return _Layers(nn.Linear(in_features, num_classes))
    blocks = [nn.Sequential(nn.Linear(in_features, width), nn.ReLU(inplace=True))]
    blocks += [nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True))
               for _ in range(depth - 2)]
    return _Layers(*blocks, nn.Linear(width, num_classes))
''',
        "training_error": '''
import warnings


def training_error(model, X, y):
    warnings.warn("measuring the training error")  # a warning must not cost points
    mode = model.training
    try:
        model.train(False)
        with torch.inference_mode():
            wrong = (model(X).max(dim=1).indices != y).sum().item()
    finally:
        model.train(mode)
    return wrong / y.shape[0]
''',
        "layer_gradient_norms": '''
def layer_gradient_norms(model, X, y):
    for p in model.parameters():
        p.grad = None
    logits = model.forward(X)
    loss = nn.CrossEntropyLoss()(logits, y)
    weights = [m.weight for m in model.modules() if type(m) is nn.Linear]
    grads = torch.autograd.grad(loss, weights)
    return [float(torch.sqrt((g ** 2).sum())) for g in grads]
''',
    },
    "loop_style": {
        "plain_bn_mlp": '''
def plain_bn_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth must be >= 1")
    model = nn.Sequential()
    fan_in = in_features
    for _ in range(depth - 1):
        linear = nn.Linear(fan_in, width, bias=False)
        with torch.no_grad():
            linear.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
        model.extend([linear, nn.BatchNorm1d(width), nn.ReLU(inplace=True)])
        fan_in = width
    model.append(nn.Linear(fan_in, num_classes))
    return model
''',
        "plain_mlp": '''
def plain_mlp(in_features, width, depth, num_classes):
    if depth < 1:
        raise ValueError("depth < 1")
    model = nn.Sequential()
    features = in_features
    for i in range(depth - 1):
        model.add_module(f"fc{i}", nn.Linear(features, width))
        model.add_module(f"relu{i}", nn.ReLU())
        features = width
    model.add_module("out", nn.Linear(features, num_classes))
    return model
''',
        "training_error": '''
def training_error(model, X, y):
    modes = {m: m.training for m in model.modules()}
    model.eval()
    with torch.no_grad():
        correct = 0
        for start in range(0, len(X), 16):  # batched, counted per example
            correct += (model(X[start:start + 16]).argmax(-1) == y[start:start + 16]).sum().item()
    for m, mode in modes.items():
        m.training = mode
    return 1.0 - correct / len(X)
''',
        "layer_gradient_norms": '''
def layer_gradient_norms(model, X, y):
    model.zero_grad(set_to_none=False)
    log_probs = F.log_softmax(model(X), dim=1)
    loss = F.nll_loss(log_probs, y)
    loss.backward()
    result = []
    for layer in model:
        if isinstance(layer, nn.Linear):
            result.append(torch.linalg.vector_norm(layer.weight.grad).item())
        elif isinstance(layer, nn.Sequential):
            result += [m.weight.grad.norm().item() for m in layer if isinstance(m, nn.Linear)]
    return result
''',
    },
}
