"""grader/integrity/tamper_scan.py: the static scan of a student's cells flags tampering
(rebinding what the tests rely on, hooks, frames, dynamic code) and leaves ordinary answers
alone. The kernel's runtime report is in tests/grader/inside/test_tamper.py."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.integrity import tamper_scan

CLEAN = [
    # ordinary answers, in several styles, must not be flagged
    "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"
    "class ResidualBlock(nn.Module):\n    def __init__(self, features):\n"
    "        super().__init__()\n        self.linear1 = nn.Linear(features, features)\n"
    "        self.linear2 = nn.Linear(features, features)\n\n    def forward(self, a):\n"
    "        return F.relu(self.linear2(F.relu(self.linear1(a))) + a)\n",
    "def training_error(model, X, y):\n    was_training = model.training\n    model.eval()\n"
    "    with torch.no_grad():\n        wrong = (model(X).argmax(1) != y).float().mean().item()\n"
    "    model.train(was_training)\n    return wrong\n",
    "import numpy as np\nvalues = np.array([1.0, 2.0])\nassert np.allclose(values, values)\n"
    "total = 0\nfor v in values:\n    total += v\nprint(len(values), isinstance(total, float))\n",
    "%matplotlib inline\nimport sys\nprint('torch' in sys.modules)\n",
    "class Net(torch.nn.Module):\n    def __repr__(self):\n        return 'Net()'\n",
]

TAMPERED = {
    "torch.allclose = lambda *a, **k: True": "torch.allclose",
    "import torch as T\nT.equal = lambda a, b: True": "torch.equal",
    "import numpy as np\nnp.testing.assert_allclose = print": "numpy",
    "torch.Tensor.__eq__ = lambda self, other: True": "__eq__",
    "from torch import Tensor\nTensor.allclose = lambda *a, **k: True": "Tensor",
    "import builtins\nbuiltins.isinstance = lambda *a: True": "builtins",
    "__builtins__.len = lambda x: 0": "builtins",
    "def isinstance(obj, cls):\n    return True": "isinstance",
    "len = lambda x: 3": "len",
    "setattr(torch, 'allclose', lambda *a, **k: True)": "setattr",
    "import sys\nsys.modules['torch'] = None": "sys.modules",
    "import sys\nsys.modules.pop('grader.checks.common')": "sys.modules",
    "get_ipython().events.register('post_run_cell', print)": "event",
    "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: [])":
        "input_transformers_cleanup",
    "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)": "set_custom_exc",
    "get_ipython().ast_transformers.append(object())": "ast_transformers",
    "import resnet_course.models as m\nplain_mlp = m.plain_mlp": "resnet_course.models",
    "from resnet_course.train import evaluate": "resnet_course.train",
    "from resnet_course.data import spirals\nX, y = spirals(n_per_class=10)": "resnet_course.data",
    "import grader.checks.common": "grader",
    "exec('torch.allclose = None')": "exec",
    "import importlib\nm = importlib.import_module('resnet_' + 'course')": "importlib",
    "class Liar(float):\n    def __eq__(self, other):\n        return True": "__eq__",
    "class T(torch.Tensor):\n    @classmethod\n"
    "    def __torch_function__(cls, f, t, a=(), k=None):\n        return True":
        "__torch_function__",
    "import sys\nf = sys._getframe(1)": "_getframe",
    "import inspect\ninspect.currentframe().f_back.f_globals['expect'] = print": "f_back",
    "import ctypes": "ctypes",
    "%load_ext evil": "load_ext",
}


@pytest.mark.parametrize("source", CLEAN)
def test_ordinary_answers_are_not_flagged(source):
    assert tamper_scan.scan_source(source) == []


@pytest.mark.parametrize("source,needle", sorted(TAMPERED.items()))
def test_tampering_is_flagged(source, needle):
    reasons = tamper_scan.scan_source(source)
    assert reasons, source
    assert any(needle in r for r in reasons), (needle, reasons)


def test_syntax_errors_are_not_tampering():
    assert tamper_scan.scan_source("def broken(:\n    pass") == []


def test_scan_notebook_skips_release_cells_and_restored_tests():
    given = "import torch\nfrom grader.checks.ex1 import check_plain_mlp"
    nb = new_notebook(cells=[
        new_code_cell(given),
        new_code_cell("torch.allclose = None", metadata={"nbgrader": {
            "grade_id": "answer", "solution": True}}),
        new_code_cell("import grader  # edited test cell: restored before running",
                      metadata={"nbgrader": {"grade_id": "test_x", "grade": True,
                                             "solution": False}}),
    ])
    reasons = tamper_scan.scan_notebook(nb, trusted_sources=[given], restored_ids=["test_x"])
    assert len(reasons) == 1 and reasons[0].startswith("answer: ")


def test_trusted_cells_of_a_release():
    nb = new_notebook(cells=[new_code_cell("import torch"),
                             new_code_cell("x = 1", metadata={"nbgrader": {
                                 "grade_id": "a", "solution": True}}),
                             new_code_cell("assert x", metadata={"nbgrader": {
                                 "grade_id": "t", "grade": True, "solution": False}})])
    sources, ids = tamper_scan.trusted_cells(nbformat.from_dict(nb))
    assert sources == ["import torch", "assert x"] and ids == ["t"]
