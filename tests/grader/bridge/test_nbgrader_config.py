"""grader.bridge.nbgrader_config (and the sandbox's additions in GradingSettings.config) without a
kernel: the settings the DESIGN promises are set, and nbgrader's own classes read them."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_output
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.converters.base import NbGraderException
from nbgrader.coursedir import CourseDirectory
from nbgrader.plugins import CsvExportPlugin
from nbgrader.preprocessors import Execute, IgnorePattern, OverwriteCells
from traitlets.config import Config

from grader.bridge.nbgrader_config import (
    DEFAULT_TIMEOUT,
    apply_grading_settings,
    build_config,
    config_file_text,
    refusal_message,
)
from grader.commands.autograde import GradingSettings
from grader.isolation.sandbox import SandboxedExecute


def test_build_config(tmp_path: Path):
    c = build_config(tmp_path / "." / "course", "sqlite:///g.db", timeout=7,
                     kernel_manager_class="pkg.mod.Manager")
    assert c.CourseDirectory.root == str((tmp_path / "course").resolve())
    assert c.CourseDirectory.db_url == "sqlite:///g.db"
    assert c.CourseDirectory.course_id == "default_course"  # what Gradebook() writes to
    assert c.Execute.timeout == 7 and c.Execute.interrupt_on_timeout is True
    assert c.Execute.kernel_manager_class == "pkg.mod.Manager"
    assert c.OverwriteCells.add_missing_cells is True  # a deleted test cell still runs
    assert c.IgnorePattern.enabled is True
    assert c.HTMLExporter.sanitize_html is True
    assert "feedback" in c.CourseDirectory.ignore


def test_defaults_leave_nbgraders_own(tmp_path: Path):
    c = build_config(tmp_path)
    assert c.Execute.timeout == DEFAULT_TIMEOUT
    assert "db_url" not in c.CourseDirectory and "kernel_manager_class" not in c.Execute


@pytest.mark.parametrize("timeout", [0, -5, None])
def test_timeout_must_be_positive(tmp_path: Path, timeout):
    with pytest.raises(ValueError, match="timeout"):
        build_config(tmp_path, timeout=timeout)


def test_execute_timeout_wins_over_the_preprocessors(tmp_path: Path):
    # the pitfall: ExecutePreprocessor.timeout from a user's config must not win
    c = build_config(tmp_path, timeout=7)
    c.ExecutePreprocessor.timeout = 999
    assert Execute(config=c).timeout == 7
    assert OverwriteCells(config=c).add_missing_cells is True


def test_ignore_pattern_drops_every_stderr_output(tmp_path: Path):
    c = build_config(tmp_path)
    cell = new_code_cell("check()", outputs=[
        new_output("stream", name="stderr", text="UserWarning: x\n  more\n"),
        new_output("stream", name="stderr", text=""),
        new_output("stream", name="stdout", text="ok\n")])
    cell, _ = IgnorePattern(config=c).preprocess_cell(cell, {}, 0)
    assert [(o.name, o.text) for o in cell.outputs] == [("stdout", "ok\n")]


def test_grading_settings_put_the_sandboxed_executor_in_place(tmp_path: Path):
    settings = GradingSettings(tmp_path, "sqlite:///g.db", timeout=9, sandbox=False)
    c = settings.config()
    steps = c.Autograde.autograde_preprocessors
    assert SandboxedExecute in steps and Execute not in steps
    executor = SandboxedExecute(config=c)
    assert executor.timeout == 9  # --cell-timeout reaches the executor
    assert c.SandboxKernelManager.sandbox is False
    assert c.SandboxedExecute.cell_output_bytes == settings.limits.cell_output_bytes
    assert c.SandboxKernelManager.notebook_timeout == settings.limits.notebook_timeout


def test_config_file_gives_formgrader_the_same_settings(tmp_path: Path):
    text = config_file_text(tmp_path, "sqlite:///g.db", timeout=11)
    loaded = Config()
    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": lambda: loaded})
    expected = build_config(tmp_path, "sqlite:///g.db", timeout=11)
    for section in ("CourseDirectory", "Execute", "OverwriteCells", "IgnorePattern",
                    "HTMLExporter"):
        assert loaded[section] == expected[section], section
    assert "db_url" not in config_file_text(tmp_path, None)


def test_apply_grading_settings_alone():
    c = Config()
    apply_grading_settings(c, timeout=5)
    assert c.Execute.timeout == 5 and "root" not in c.CourseDirectory


def test_config_file_refuses_nbgraders_grading_steps(tmp_path: Path):
    """DIR's file makes nbgrader's Autograde and GenerateFeedback refuse when they build their
    exporter (before writing anything; tests/grader/bridge/test_nbgrader_refusal.py drives the
    commands);
    the grader's own Config (build_config, GradingSettings.config) does not."""
    text = config_file_text(tmp_path, "sqlite:///g.db")
    loaded = Config()
    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": lambda: loaded})
    for step, converter in (("Autograde", Autograde), ("GenerateFeedback", GenerateFeedback)):
        app = converter(coursedir=CourseDirectory(config=loaded), config=loaded)
        with pytest.raises(NbGraderException, match="refused in this course directory") as err:
            app.exporter_class(parent=app, config=loaded)
        assert f"--workdir {tmp_path.resolve()}" in str(err.value)
        assert refusal_message(step, tmp_path.resolve()) == str(err.value)
    assert "grader autograde SUBMISSIONS" in refusal_message("Autograde", "D")
    assert "grader export --workdir D" in refusal_message("GenerateFeedback", "D")
    assert CsvExportPlugin(config=loaded).to == "nbgrader_grades.csv"  # not grades.csv
    ours = GradingSettings(tmp_path, "sqlite:///g.db", sandbox=False).config()
    for step in ("Autograde", "GenerateFeedback"):
        assert "exporter_class" not in ours[step]
