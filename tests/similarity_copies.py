"""Disguised copies that the similarity report must find (tests/grader/integrity/test_similarity).

Each is what a student might hand in after copying: identifiers renamed, independent statements
reordered, the layout and the comments changed, type annotations dropped or added. COPIES maps a
name to (assignment, answer cell, what was copied, the disguised cell). What was copied is
("library", "<file in src/resnet_course>"), ("solution", "") or ("student", "<variant>") for
CORRECT[<variant>] of tests/variants_<ex>.py, the answer of another, honest student.

The copies of the solution and of other students are written by hand. The copies of the library
are made here, when the tests import this module, from the library's *current* source
(`library_copy`): a refactor of src/resnet_course changes them with it, so they cannot go stale.
"""

from __future__ import annotations

import ast

from conftest import REPO

from grader.integrity.similarity import bound_names

LIBRARY = REPO / "src" / "resnet_course"

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


class Renamer(ast.NodeTransformer):
    """Gives every name the cell binds a new one (contract names and `self` too)."""

    def __init__(self, names: set[str]):
        self.new = {name: f"v{i}_{name[::-1]}" for i, name in enumerate(sorted(names))}

    def visit_Name(self, node):
        node.id = self.new.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.new.get(node.arg, node.arg)
        return node

    def visit_Attribute(self, node):
        node.attr = self.new.get(node.attr, node.attr)
        return self.generic_visit(node)

    def visit_FunctionDef(self, node):
        node.name = self.new.get(node.name, node.name)
        return self.generic_visit(node)

    visit_ClassDef = visit_FunctionDef


def bound(node: ast.AST) -> set[str]:
    """Names a piece of code binds (grader.integrity.similarity's notion)."""
    return bound_names(node if isinstance(node, ast.Module) else ast.Module([node], []))


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def swap_independent_assignments(body: list) -> None:
    """Swap neighbouring assignments that do not read what the other writes."""
    i = 0
    while i + 1 < len(body):
        a, b = body[i], body[i + 1]
        if isinstance(a, ast.Assign) and isinstance(b, ast.Assign):
            writes_a = set().union(*map(_names, a.targets))
            writes_b = set().union(*map(_names, b.targets))
            if not writes_a & _names(b) and not writes_b & _names(a):
                body[i], body[i + 1] = b, a
                i += 2
                continue
        i += 1
    for statement in body:
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(statement, name, None)
            if isinstance(inner, list):
                swap_independent_assignments(inner)


def disguise_tree(tree: ast.Module) -> str:
    """Names changed, independent statements reordered, reformatted by ast.unparse (comments
    and layout gone), new comments."""
    imported = {name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for name in bound(node)}  # `nn` stays `nn`: the import line is not renamed
    tree = Renamer(bound(tree) - imported - {"__init__", "forward", "extra_repr"}).visit(tree)
    swap_independent_assignments(tree.body)
    return "# my solution\n" + ast.unparse(tree).replace("\n\n", "\n# next part\n")


class _OwnCopy(ast.NodeTransformer):
    """Docstrings and annotations go, as a copier's paste would lose them."""

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.returns = None
        node.body = _without_docstring(node.body) or [ast.Pass()]
        for arg in ast.walk(node.args):
            if isinstance(arg, ast.arg):
                arg.annotation = None
        return node

    def visit_ClassDef(self, node):
        self.generic_visit(node)
        node.body = _without_docstring(node.body) or [ast.Pass()]
        return node

    def visit_AnnAssign(self, node):
        if node.value is None:
            return node
        return ast.copy_location(ast.Assign([node.target], node.value), node)


def _without_docstring(body: list) -> list:
    first = body[0] if body else None
    docstring = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                 and isinstance(first.value.value, str))
    return body[1:] if docstring else body


def _imports_used(tree: ast.Module, used: set[str]) -> list[ast.stmt]:
    """The file's absolute imports that bind a name the pasted code uses."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (
                node.level or node.module == "__future__"
                or node.module.startswith("resnet_course")):  # what the copy pastes instead
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)) and bound(node) & used:
            found.append(node)
    return found


def library_copy(pasted: list[str]) -> str:
    """A disguised copy of the definitions `pasted` ("file.py:name") of src/resnet_course, as
    they are now, in the order given (the student's order, not the library's), with the
    imports they need."""
    trees = {}
    imports, defs = [], []
    for item in pasted:
        file, name = item.split(":")
        if file not in trees:
            trees[file] = ast.parse((LIBRARY / file).read_text(encoding="utf-8"))
        node = next((node for node in trees[file].body if getattr(node, "name", None) == name),
                    None)
        assert node is not None, f"src/resnet_course/{file} no longer defines {name}"
        defs.append(node)
    used = {n.id for d in defs for n in ast.walk(d) if isinstance(n, ast.Name)}
    for tree in trees.values():
        imports += [i for i in _imports_used(tree, used) if ast.dump(i) not in map(ast.dump,
                                                                                   imports)]
    copy = ast.Module(imports + defs, type_ignores=[])
    copy = ast.fix_missing_locations(_OwnCopy().visit(copy))
    return disguise_tree(copy)


# (assignment, answer cell, the library file copied, the definitions pasted into the cell, in
# the student's order, as "file:name")
LIBRARY_COPIES = {
    # BasicBlock with the helpers it calls, pasted after the class, and the argument checks
    # its decorator calls (another module)
    "library_basic_block": ("ex3_shortcuts", "BasicBlock", "models.py", [
        "models.py:BasicBlock", "models.py:conv3x3", "models.py:_check_shortcut",
        "models.py:make_shortcut", "validate.py:is_int", "validate.py:check_int",
        "validate.py:ints_at_least"]),
    "library_zero_pad": ("ex3_shortcuts", "ZeroPadShortcut", "models.py", [
        "validate.py:check_int", "validate.py:is_int", "validate.py:ints_at_least",
        "models.py:ZeroPadShortcut"]),
    # plain_mlp and the argument checks its decorator calls, from two library modules
    "library_plain_mlp": ("ex1_degradation", "plain_mlp", "models.py", [
        "validate.py:is_int", "validate.py:check_int", "validate.py:ints_at_least",
        "models.py:plain_mlp"]),
    # train_one_epoch and the two helpers it calls, the helpers pasted first
    "library_train_one_epoch": ("ex5_gpu_training", "train_one_epoch", "train.py", [
        "train.py:_to_device", "train.py:_autocast", "train.py:train_one_epoch"]),
}

COPIES = {
    # BasicBlock with the helpers it calls; the helpers pasted after the class
    "library_basic_block": ("ex3_shortcuts", "BasicBlock", "models.py",
                            ["BasicBlock", "conv3x3", "_check_shortcut", "make_shortcut"]),
    "library_zero_pad": ("ex3_shortcuts", "ZeroPadShortcut", "models.py", ["ZeroPadShortcut"]),
    "library_plain_mlp": ("ex1_degradation", "plain_mlp", "models.py", ["plain_mlp"]),
    # train_one_epoch and the two helpers it calls, the helpers pasted first
    "library_train_one_epoch": ("ex5_gpu_training", "train_one_epoch", "train.py",
                                ["_to_device", "_autocast", "train_one_epoch"]),
}

COPIES = {
    "solution_evaluate": ("ex5_gpu_training", "evaluate", ("solution", ""), SOLUTION_EVALUATE),
    "student_resnet_cifar": ("ex4_image_resnets", "resnet_cifar", ("student", "class_based"),
                             STUDENT_RESNET_CIFAR),
    "student_residual_mlp": ("ex2_identity", "residual_mlp", ("student", "module_style"),
                             STUDENT_RESIDUAL_MLP),
}
COPIES.update({name: (aid, cell, ("library", file), library_copy(pasted))
               for name, (aid, cell, file, pasted) in LIBRARY_COPIES.items()})
