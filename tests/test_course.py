"""The nbgrader round trip: release, then grade real submissions with real nbgrader.

One grading run (fixture `graded`) covers every kind of submission:
- `solution`: the solution notebooks, every module -> full marks, runs clean;
- `untouched`: the release as handed out, every module -> 0, no crash;
- `delegate`: every exercise answered by importing the package's reference, run
  under SEED = 1 -> no points on any test cell with hidden tests, and (as a
  solution under another seed) every other cell runs clean and draws;
- on 00_rl_basics: `wrong` (one buggy function), `tamper` (buggy function and
  its test cell emptied), `loop` (infinite loop), `dies` (kernel killed),
  `cheat` (switches the reference guard off, copies a reference function),
  `warns` (a correct answer that emits a warning).
"""

import ast
import copy
import importlib
import pkgutil
import re

import pytest
from nbgrader.api import Gradebook

import rlllm_course
from rlllm_course import course

from conftest import (ASSIGNMENTS, ROOT, cell_by_id, nbgrader_meta, read_nb, released,
                      seed_cell_at, solution, source, write_nb)

BASICS = "00_rl_basics"
MARKERS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS")
# Seconds per cell while grading in FAST mode; the infinite loop waits this long. Starting Ray
# (module 15) took 12-18 s on two busy cores.
TIMEOUT = 60


def answer_cells(nb):
    return [c for c in nb["cells"] if nbgrader_meta(c).get("solution")]


def graded_cells(nb):
    return [c for c in nb["cells"] if nbgrader_meta(c).get("grade")]


def defined_functions(code):
    return [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]


def reference_module(name, notebook_text=""):
    """The rlllm_course module that defines the reference function `name`.

    Where several modules define it (``pg.reinforce_loss`` for CartPole and an LLM
    variant, say), the one the notebook itself names is the reference.
    """
    found = []
    for info in pkgutil.walk_packages(rlllm_course.__path__, "rlllm_course."):
        module = importlib.import_module(info.name)
        f = getattr(module, name, None)
        if callable(f) and getattr(f, "__module__", None) == info.name:
            found.append(info.name)
    if len(found) > 1:
        found = [m for m in found if named_in(m, notebook_text)]
    if len(found) != 1:
        raise LookupError(f"exercise function {name} needs exactly one reference of the same name "
                          f"in rlllm_course (that the notebook imports); found {found}")
    return found[0]


def named_in(module, text):
    """Does the notebook import `module` (dotted, or `from parent import leaf`)?"""
    parent, leaf = module.rsplit(".", 1)
    return module in text or re.search(rf"from {re.escape(parent)} import [^\n]*\b{leaf}\b", text) is not None


def notebook_text(nb):
    return "\n".join(source(c) for c in nb["cells"])


DELEGATE_SEED = 1  # test_notebook_seeds runs the other seeds


def delegating(name):
    """The release with every answer cell replaced by imports of the reference, under another SEED.

    Apart from its test cells it computes what the solution computes, so run with
    ``SEED = DELEGATE_SEED`` (injected after the parameters cell, as papermill would)
    it doubles as the solution's run under another seed.
    """
    nb = copy.deepcopy(released(name))
    sol = solution(name)
    for cell in answer_cells(nb):
        names = defined_functions(source(cell_by_id(sol, nbgrader_meta(cell)["grade_id"])))
        cell["source"] = "\n".join(f"from {reference_module(n, notebook_text(sol))} import {n}" for n in names)
    seed = {"cell_type": "code", "id": "injected-seed", "execution_count": None, "metadata": {}, "outputs": [],
            "source": f"SEED = {DELEGATE_SEED}  # injected by the test"}
    nb["cells"].insert(seed_cell_at(nb), seed)
    return nb


def replace_function(nb, grade_id, code):
    """A copy of `nb` where answer cell `grade_id` holds `code`."""
    nb = copy.deepcopy(nb)
    cell_by_id(nb, grade_id)["source"] = code
    return nb


WRONG = '''
import numpy as np
def discounted_returns(rewards, dones, gamma):
    # a common bug: the sum runs on past the end of each episode
    G, out = 0.0, []
    for r in reversed(list(rewards)):
        G = r + gamma * G
        out.append(G)
    return np.array(out[::-1])
'''
# Attempts on the guard itself (a real submission switched it off and earned full marks).
NO_OP_GUARD = '''
import contextlib
import rlllm_course.grading
rlllm_course.grading.reference_disabled = lambda *targets: contextlib.nullcontext()
from rlllm_course.returns import discounted_returns
'''
COPIED_REFERENCE = '''
import types
from rlllm_course import basics
q_from_v = types.FunctionType(basics.q_from_v.__code__, basics.q_from_v.__globals__, "q_from_v")
'''


def warning_first(code):
    """A correct answer that also emits a warning, as a library might (stderr in the test cell)."""
    lines = code.splitlines()
    at = next(i for i, l in enumerate(lines) if "### BEGIN SOLUTION" in l)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f"{indent}import warnings; warnings.warn('a library warns', UserWarning)")
    return "\n".join(lines)


LOOP = '''
def discounted_returns(rewards, dones, gamma):
    while True:  # a loop that never ends
        pass
'''


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Grade all submissions once; returns (gradebook url, rows of the CSV, workdir)."""
    sub = tmp_path_factory.mktemp("submitted")
    for name in ASSIGNMENTS:
        write_nb(solution(name), sub / "solution" / name / f"{name}.ipynb")
        write_nb(released(name), sub / "untouched" / name / f"{name}.ipynb")
        write_nb(delegating(name), sub / "delegate" / name / f"{name}.ipynb")
    basics = solution(BASICS)
    last = nbgrader_meta(answer_cells(basics)[-1])["grade_id"]
    special = {
        "wrong": replace_function(basics, "ex_discounted_returns", WRONG),
        "loop": replace_function(basics, "ex_discounted_returns", LOOP),
        "dies": replace_function(basics, last, "import os\nos._exit(1)"),
    }
    special["warns"] = replace_function(basics, "ex_discounted_returns", warning_first(
        source(cell_by_id(basics, "ex_discounted_returns"))))
    cheat = replace_function(basics, "ex_discounted_returns", NO_OP_GUARD)
    special["cheat"] = replace_function(cheat, "ex_q_from_v", COPIED_REFERENCE)
    tamper = replace_function(basics, "ex_discounted_returns", WRONG)
    cell_by_id(tamper, "test_discounted_returns")["source"] = "pass  # the test is gone"
    special["tamper"] = tamper
    for student, nb in special.items():
        write_nb(nb, sub / student / BASICS / f"{BASICS}.ipynb")

    work = tmp_path_factory.mktemp("grading")
    rows = course.grade(sub, out=work / "grades.csv", workdir=work, timeout=TIMEOUT,
                        fast=True, jobs=2, log=lambda *a: None)
    return f"sqlite:///{work / 'gradebook.db'}", {(r["student_id"], r["assignment"]): r for r in rows}, work


def cell_scores(graded, student, name):
    """{grade_id: (score, max_score)} of one graded notebook."""
    url = graded[0]
    with Gradebook(url) as gb:
        nb = gb.find_submission_notebook(name, name, student)
        return {g.name: (g.score, g.max_score) for g in nb.grades}


# --- release -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_is_what_generation_produces_today(release_dir, name):
    # notebooks/ is generated and committed: it must not drift from solutions/
    fresh = read_nb(release_dir / name / f"{name}.ipynb")
    assert released(name) == fresh, f"notebooks/{name} is stale: run `rlllm-course release`"


def test_release_has_exactly_the_solution_modules():
    # a module added to solutions/ must be released too, and nothing else is in notebooks/
    shipped = sorted(p.name for p in (ROOT / "notebooks").iterdir() if p.is_dir())
    assert shipped == course.assignments()


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_has_no_solution_code_no_hidden_tests_no_outputs(name):
    nb, sol = released(name), solution(name)
    text = "\n".join(source(c) for c in nb["cells"])
    assert not MARKERS.search(text), "solution or hidden-test markers left in the release"
    blocks = r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END[^\n]*"
    public = re.sub(blocks, "", notebook_text(sol), flags=re.S)  # what students may see anyway
    for cell in sol["cells"]:
        for block in re.findall(blocks, source(cell), re.S):
            for line in block.splitlines():
                # every substantial line of a solution or hidden test is absent from the release
                # (unless the same line is also public, e.g. a call in a visible test)
                if len(line.strip()) > 25 and line.strip() not in public:
                    assert line.strip() not in text, f"leaked into the release: {line.strip()}"
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert len(answer_cells(nb)) >= 2 and len(graded_cells(nb)) >= 2


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_carry_no_outputs_and_follow_the_conventions(name):
    sol = solution(name)
    assert all(not c.get("outputs") for c in sol["cells"] if c["cell_type"] == "code")
    tags = [t for c in sol["cells"] for t in c.get("metadata", {}).get("tags", [])]
    assert "parameters" in tags and "figure" in tags
    for cell in graded_cells(sol):
        assert "### BEGIN HIDDEN TESTS" in source(cell), f"{nbgrader_meta(cell)['grade_id']} has no hidden tests"
        # JupyterLab's Run All goes on past a test cell tagged so (an unfilled exercise fails it)
        assert "raises-exception" in cell["metadata"].get("tags", []), nbgrader_meta(cell)["grade_id"]
        assert "reference_disabled" in source(cell), f"{nbgrader_meta(cell)['grade_id']} does not catch delegation"
    for cell in answer_cells(sol):
        for f in defined_functions(source(cell)):
            reference_module(f, notebook_text(sol))  # the exercise has a reference of the same name


# --- grading -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_scores_full_marks(graded, name):
    scores = cell_scores(graded, "solution", name)
    assert scores and all(s == m for s, m in scores.values()), scores
    assert graded[1]["solution", name]["problem"] == ""


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_notebook_runs_clean_and_draws_its_figures(graded, name):
    # grading executed the solution in FAST mode: no cell may fail, every figure cell draws
    nb = read_nb(graded[2] / "autograded" / "solution" / name / f"{name}.ipynb")
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(nb["cells"])
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    figures = [c for c in nb["cells"] if "figure" in c.get("metadata", {}).get("tags", [])]
    for cell in figures:
        assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), source(cell)[:200]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_release_scores_zero_without_crashing(graded, name):
    scores = cell_scores(graded, "untouched", name)
    assert scores and all(s == 0 for s, _ in scores.values()), scores
    assert graded[1]["untouched", name]["problem"] == ""  # graded normally, not aborted


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_run_all_reaches_the_end_of_the_untouched_release(graded, name):
    # what a student sees after Run All on a fresh release: only the test cells fail (they are
    # tagged raises-exception, so JupyterLab goes on), each naming the function to fill in, and
    # every picture is drawn
    nb = read_nb(graded[2] / "autograded" / "untouched" / name / f"{name}.ipynb")
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                assert "raises-exception" in cell["metadata"].get("tags", []), (i, out["ename"], out["evalue"])
                if out["ename"] == "NotImplementedError":
                    assert re.fullmatch(r"fill in `\w+` above", out["evalue"]), out["evalue"]
    failing = [c for c in nb["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failing) == len(graded_cells(nb))  # every test cell fails, nothing else
    for cell in nb["cells"]:
        if "figure" in cell["metadata"].get("tags", []):
            assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), source(cell)[:200]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_calling_the_reference_earns_no_hidden_test_points(graded, name):
    scores = cell_scores(graded, "delegate", name)
    assert scores and all(s == 0 for s, _ in scores.values()), scores


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_solution_runs_clean_and_draws_under_another_seed(graded, name):
    # the delegating submission computes what the solution computes, under SEED = DELEGATE_SEED:
    # only its test cells may fail (the hidden tests switch the reference off), every picture draws
    nb = read_nb(graded[2] / "autograded" / "delegate" / name / f"{name}.ipynb")
    assert any(source(c).startswith(f"SEED = {DELEGATE_SEED}") for c in nb["cells"])
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                assert nbgrader_meta(cell).get("grade"), (i, out["ename"], out["evalue"][:300])
    for cell in nb["cells"]:
        if "figure" in cell["metadata"].get("tags", []):
            assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), source(cell)[:200]


def test_one_wrong_function_loses_exactly_its_points(graded):
    scores = cell_scores(graded, "wrong", BASICS)
    assert scores.pop("test_discounted_returns")[0] == 0
    assert all(s == m for s, m in scores.values()), scores


def test_an_edited_test_cell_is_restored_and_graded_honestly(graded):
    scores = cell_scores(graded, "tamper", BASICS)
    assert scores["test_discounted_returns"][0] == 0
    nb = read_nb(graded[2] / "autograded" / "tamper" / BASICS / f"{BASICS}.ipynb")
    original = cell_by_id(solution(BASICS), "test_discounted_returns")  # hidden tests included
    assert source(cell_by_id(nb, "test_discounted_returns")) == source(original)


def test_switching_the_guard_off_or_copying_the_reference_earns_nothing_and_is_flagged(graded):
    scores = cell_scores(graded, "cheat", BASICS)
    assert scores.pop("test_discounted_returns")[0] == 0  # the no-op guard could not be installed
    assert scores.pop("test_q_from_v")[0] == 0  # the copy runs the reference's code: caught
    assert all(s == m for s, m in scores.values()), scores  # the honest answers keep their points
    problem = graded[1]["cheat", BASICS]["problem"]
    assert "check for tampering" in problem
    flagged = dict(part.split(": ", 1) for part in problem.removeprefix("check for tampering: ").split("; "))
    assert "writes rlllm_course.grading.reference_disabled" in flagged["ex_discounted_returns"]
    assert "builds functions (types.FunctionType)" in flagged["ex_q_from_v"]
    assert "touches __code__" in flagged["ex_q_from_v"]


def test_a_warning_from_a_correct_answer_costs_nothing(graded):
    # nbgrader scores a test cell that writes to stderr 0; grading ignores warnings
    scores = cell_scores(graded, "warns", BASICS)
    assert all(s == m for s, m in scores.values()), scores


def test_an_infinite_loop_times_out_and_the_rest_is_graded(graded):
    scores = cell_scores(graded, "loop", BASICS)
    assert scores.pop("test_discounted_returns")[0] == 0
    assert all(s == m for s, m in scores.values()), scores  # later cells still ran
    assert "timed out in test_discounted_returns" in graded[1]["loop", BASICS]["problem"]


def test_a_dying_kernel_scores_zero_with_a_reason_and_others_are_graded(graded):
    row = graded[1]["dies", BASICS]
    assert float(row["score"]) == 0
    assert "DeadKernelError" in row["problem"]
    # students graded after the crash ("loop", "tamper", "warns", ...) have their scores ("warns" holds
    # a correct submission, graded whichever modules RLLLM_TEST_ASSIGNMENTS names)
    assert float(graded[1]["warns", BASICS]["score"]) == float(row["max_score"]) > 0


def test_grades_csv_has_nbgrader_columns_and_the_problem(graded):
    header = (graded[2] / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["assignment", "duedate", "timestamp"]
    assert {"student_id", "score", "max_score", "problem"} <= set(header)


# --- Validate (what a student's Validate button runs) ------------------------------------

def completed_release(name):
    """The release with each answer cell filled in as the solution does (no markers)."""
    nb = copy.deepcopy(released(name))
    sol = solution(name)
    for cell in answer_cells(nb):
        code = source(cell_by_id(sol, nbgrader_meta(cell)["grade_id"]))
        cell["source"] = "\n".join(l for l in code.splitlines() if "### " not in l)
    return nb


def validate(nb, tmp_path):
    from nbgrader.validator import Validator
    from traitlets.config import Config
    path = tmp_path / "submission.ipynb"
    write_nb(nb, path)
    return Validator(config=Config({"ExecutePreprocessor": {"timeout": TIMEOUT}})).validate(str(path))


def test_validate_passes_a_completed_notebook(tmp_path):
    assert validate(completed_release(BASICS), tmp_path) == {}


def test_validate_reports_every_unanswered_exercise(tmp_path):
    results = validate(released(BASICS), tmp_path)
    assert len(results.get("failed", [])) == len(graded_cells(released(BASICS)))
    assert all("NotImplementedError" in f["raw_error"] for f in results["failed"])
    # each names the function the student has to write
    names = {m.group(1) for f in results["failed"] for m in [re.search(r"fill in `(\w+)` above", f["raw_error"])] if m}
    expected = {f for c in answer_cells(solution(BASICS)) for f in defined_functions(source(c))}
    assert names and names <= expected, (names, expected)
