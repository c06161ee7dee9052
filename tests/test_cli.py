"""The rlllm-course command line: arguments and errors."""

import subprocess
import sys

import pytest

from rlllm_course import cli


def test_grade_names_the_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="submitted must be a folder"):
        cli.main(["grade", str(tmp_path / "nowhere")])


def test_the_console_script_lists_its_commands():
    out = subprocess.run([sys.executable, "-m", "rlllm_course.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "release" in out and "grade" in out and "gpu-grpo" in out


def test_release_of_an_unknown_assignment_fails_with_nbgrader_s_reason(tmp_path):
    with pytest.raises(RuntimeError, match="generate_assignment 99_nothing failed"):
        cli.main(["release", "99_nothing", "--out", str(tmp_path)])
