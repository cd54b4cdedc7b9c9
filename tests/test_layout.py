"""tests/ mirrors the packages (tests/README.md): every module of grader/ and of
src/resnet_course has a test file of its name in the mirrored folder, and the layout stays
importable under pytest's default import mode (unique file names, no __init__.py)."""

from collections import Counter

from conftest import REPO

TESTS = REPO / "tests"
# Modules with no test file of their own name yet (issue 21 item 5): what they do is tested
# through other files (end to end, or the file named after it). Remove a line when its file is
# written; the test below fails when a listed module has one, so the list only shrinks.
NOT_YET: set[str] = set()
# tests of tests/'s own helper modules stay next to them, at the top
TOP_LEVEL = {"test_xdist_groups.py", "test_cpu_by_process.py", "test_claims_table.py",
             "test_layout.py"}


def modules() -> list[str]:
    found = [*(REPO / "grader").rglob("*.py"), *(REPO / "src" / "resnet_course").rglob("*.py")]
    return sorted(p.relative_to(REPO).as_posix() for p in found
                  if p.name not in ("__init__.py", "__main__.py"))


def test_file_of(module: str) -> str:
    """tests/grader/<room>/test_<m>.py for grader/<room>/<m>.py; tests/library/test_<m>.py for
    src/resnet_course/<m>.py."""
    folder, _, name = module.rpartition("/")
    if folder.startswith("src/resnet_course"):
        folder = "library" + folder[len("src/resnet_course"):]
    return f"tests/{folder}/test_{name}"


test_file_of.__test__ = False  # a helper, not a test


def test_every_module_has_a_test_file_of_its_name():
    existing = set(modules())
    missing = {m for m in existing if not (REPO / test_file_of(m)).is_file()}
    assert sorted(missing - NOT_YET) == [], "write these test files (tests/README.md)"
    assert sorted(NOT_YET - existing) == [], "these modules are gone: remove them from NOT_YET"
    done = sorted((NOT_YET & existing) - missing)
    assert done == [], f"these now have a test file: remove them from NOT_YET: {done}"


def test_the_mirror_rule():
    assert test_file_of("grader/judging/verdict.py") == "tests/grader/judging/test_verdict.py"
    assert test_file_of("grader/files.py") == "tests/grader/test_files.py"
    assert test_file_of("src/resnet_course/models.py") == "tests/library/test_models.py"


def test_test_files_live_in_the_mirrored_folders():
    top = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert set(top) <= TOP_LEVEL, f"move these into a folder (tests/README.md): {top}"
    folders = {p.parent.relative_to(TESTS).as_posix() for p in TESTS.rglob("test_*.py")
               if "fixtures" not in p.parts}
    mirrored = {test_file_of(m).rpartition("/")[0].removeprefix("tests/") for m in modules()}
    allowed = {".", "book", "grader"} | mirrored  # book: the pages, builds and editions
    assert folders <= allowed, sorted(folders - allowed)


def test_names_are_unique_and_no_package_files():
    """pytest's default import mode imports a test file by its name, from its folder: two
    files of one name would clash, and an __init__.py would change every module's name."""
    names = Counter(p.name for p in TESTS.rglob("*.py") if "fixtures" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []
    assert [p for p in TESTS.rglob("__init__.py") if "fixtures" not in p.parts] == []
