"""The nbgrader course: release the student notebooks, grade submissions.

Both wrap the plain nbgrader commands (the README lists them) and add only
what nbgrader lacks for this course:
- ``release`` writes the student notebooks from ``solutions/`` into
  ``notebooks/`` without leaving a gradebook behind in the repository;
- ``grade`` autogrades each student and assignment in its own nbgrader run,
  so that one student whose kernel dies (nbgrader then aborts the whole run)
  gets 0 with a reason while everyone else is graded, and it writes one CSV
  with nbgrader's columns plus a ``problem`` column.
"""

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import tamper

ROOT = Path(__file__).resolve().parent.parent
FAST_ENV = "RLLLM_FAST"  # "1" shrinks every notebook's run (tests, quick grading)


def assignments(source=None):
    """Names of the assignments (``NN_topic``) in the source folder, in order."""
    source = Path(source or ROOT / "solutions")
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def _nbgrader(args, cwd, env=None):
    """Run one nbgrader command; return the CompletedProcess (never raises)."""
    env = dict(env or os.environ)
    # nbgrader runs the `alembic` command of its own environment: make it findable
    # when this environment is not activated (e.g. `.venv/bin/rlllm-course`).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "nbgrader", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def _config(root, source, timeout):
    """An nbgrader_config.py for a course folder whose source is elsewhere."""
    return "\n".join([
        "c = get_config()",
        "from rlllm_course.stubs import PREPROCESSORS",
        "c.GenerateAssignment.preprocessors = PREPROCESSORS  # stubs that name the function",
        f"c.CourseDirectory.root = {str(root)!r}",
        f"c.CourseDirectory.source_directory = {str(source)!r}",
        "c.CourseDirectory.release_directory = 'release'",
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(Path(root) / 'gradebook.db')!r}",
        "c.CourseDirectory.course_id = 'rlllm-course'",
        f"c.ExecutePreprocessor.timeout = {int(timeout)}",
        "",
    ])


def release(out=None, names=None, source=None):
    """Generate the student release of `names` (default: all) into `out`.

    out: folder that receives ``NN_topic/NN_topic.ipynb`` (default ``notebooks/``).
    Raises RuntimeError with nbgrader's log if generation fails.
    """
    source = Path(source or ROOT / "solutions").resolve()
    out = Path(out or ROOT / "notebooks").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "nbgrader_config.py").write_text(_config(tmp, source, 30))
        for name in names or assignments(source):
            done = _nbgrader(["generate_assignment", name, "--force",
                              f"--CourseDirectory.release_directory={out}"], cwd=tmp)
            if done.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{done.stderr}")
    return out


def _problems(notebook):
    """Cells of an autograded notebook that hit the time limit."""
    nb = json.loads(Path(notebook).read_text())
    timed_out = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id", f"cell {i}")
                 for i, c in enumerate(nb["cells"])
                 if any(o.get("ename") == "CellTimeoutError" for o in c.get("outputs", []))]
    return f"timed out in {', '.join(timed_out)}" if timed_out else ""


def _failure(log):
    """The exception that stopped an nbgrader run, from its log (e.g. a dead kernel)."""
    errors = re.findall(r"^\s*([\w.]+(?:Error|Exception)\b.*)$", log, flags=re.M)
    return errors[-1].strip() if errors else "nbgrader failed"


def grade(submitted, out="grades.csv", workdir="grading", names=None, timeout=600,
          fast=False, jobs=1, source=None, log=print):
    """Autograde every submission in `submitted` and write a grades CSV.

    submitted: folder laid out as nbgrader's ``submitted/``:
        ``<student_id>/<NN_topic>/<NN_topic>.ipynb``.
    out: the CSV; nbgrader's export columns plus ``problem`` (why a score is 0
        or partial: kernel died, cell timed out, no submission; and code of the
        student's that looks like an attempt on the grader, see ``tamper``).
    workdir: the nbgrader course folder for this grading (gradebook.db,
        ``autograded/`` with the executed notebooks, to give as feedback).
    timeout: seconds each cell may run before it is interrupted and fails.
    fast: run the notebooks with ``RLLLM_FAST=1`` (smaller runs, same tests).
    jobs: how many notebooks to grade at once (one core each).
    Returns the rows written, as dicts.
    """
    submitted = Path(submitted).resolve()
    if not submitted.is_dir():
        raise FileNotFoundError(f"submitted must be a folder of <student>/<assignment>/, got {submitted}")
    source = Path(source or ROOT / "solutions").resolve()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nbgrader_config.py").write_text(_config(workdir, source, timeout))
    # nbgrader gives 0 to a test cell that writes to stderr: a library's warning raised by a
    # student's (correct) code must not cost the cell's points
    env = dict(os.environ, **{FAST_ENV: "1" if fast else "0", "PYTHONWARNINGS": "ignore"})
    base = [f"--CourseDirectory.submitted_directory={submitted}"]

    names = names or [a for a in assignments(source)
                      if any((s / a).is_dir() for s in submitted.iterdir())]
    for name in names:  # registers the assignment and its graded cells in the gradebook
        done = _nbgrader(["generate_assignment", name, "--force"], cwd=workdir)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{done.stderr}")

    def autograde(student, name):
        """Grade one notebook in its own nbgrader run; return what went wrong, if anything."""
        if not (submitted / student / name).is_dir():
            return "no submission"
        log(f"grading {student} / {name}")
        for attempt in range(2):  # a second try for a kernel that failed to start (a loaded machine)
            done = _nbgrader(["autograde", name, "--student", student, "--force", *base],
                             cwd=workdir, env=env)
            if done.returncode == 0 or "before replying to kernel_info" not in done.stderr:
                break
        if done.returncode != 0:
            return "not graded, scored 0: " + _failure(done.stderr)
        return _problems(next((workdir / "autograded" / student / name).glob("*.ipynb")))

    def problem(student, name):
        """What went wrong grading one notebook, and what its code did to the grader."""
        found = [autograde(student, name)]
        submission = next((submitted / student / name).glob("*.ipynb"), None)
        if submission is not None:
            attempts = tamper.scan_submission(json.loads(submission.read_text()),
                                              json.loads(next((source / name).glob("*.ipynb")).read_text()))
            if attempts:
                found.append("check for tampering: " + "; ".join(attempts))
        return "; ".join(p for p in found if p)

    students = sorted(s.name for s in submitted.iterdir() if s.is_dir())
    pairs = [(student, name) for student in students for name in names]
    # Each run is a separate process writing to the same SQLite gradebook, which
    # serializes the (short) writes; the notebooks themselves run in parallel.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        problems = dict(zip(pairs, pool.map(lambda pair: problem(*pair), pairs)))

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "grades.csv"
        done = _nbgrader(["export", "--to", str(export), *base], cwd=workdir)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader export failed:\n{done.stderr}")
        rows = list(csv.DictReader(export.open()))
    for row in rows:
        row["problem"] = problems.get((row["student_id"], row["assignment"]), "")
        if row["problem"].startswith("not graded"):  # never keep an earlier run's score
            row["raw_score"] = row["score"] = "0.0"
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["problem"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
