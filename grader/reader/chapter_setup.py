# Set-up for Colab, Binder or any Jupyter (added by the course's publishing tool; the book's own
# build runs the chapter without it). It makes the course library `resnet_course` importable:
# from this repository when the notebook is opened inside a clone of it (Binder, your own
# Jupyter), else from a fresh clone of it (Colab); then installs the packages this chapter
# imports that are missing here.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = "__READER_REPOSITORY__"
PACKAGES: dict[str, str] = {}  # module -> pinned requirement (filled in by publish)

if importlib.util.find_spec("resnet_course") is None:
    root = Path.cwd().parent  # the notebook is book/<chapter>.ipynb of the repository
    if not (root / "src" / "resnet_course").is_dir():
        root = Path.home() / "__READER_REPOSITORY_NAME__"
        if not root.is_dir():
            subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, str(root)], check=True)
        os.chdir(root / "book")  # the chapters read data/ next to themselves
    sys.path.insert(0, str(root / "src"))
    # DataLoader workers and other subprocesses import it too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root / "src"), os.environ.get("PYTHONPATH")) if p)
missing = [pin for module, pin in PACKAGES.items() if importlib.util.find_spec(module) is None]
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
