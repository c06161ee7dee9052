"""tamper: what a submission's own code does to the grader, flagged for the instructor."""

import copy

import pytest

from rlllm_course import course, tamper

from conftest import cell_by_id, nbgrader_meta, solution, source


@pytest.mark.parametrize("code, reason", [
    # the attack seen in a real submission: a no-op guard, then the reference
    ("import contextlib, rlllm_course.grading\n"
     "rlllm_course.grading.reference_disabled = lambda *a: contextlib.nullcontext()",
     "writes rlllm_course.grading.reference_disabled"),
    ("import sys, types\nsys.modules['rlllm_course.grading'] = types.ModuleType('x')", "uses sys.modules"),
    ("import sys\nsys.setprofile(None)", "changes the profiling hook"),
    ("from rlllm_course import returns as r\nr.gae = lambda *a: None", "writes r.gae"),
    ("from rlllm_course.returns import gae\ngae.__code__ = (lambda: 0).__code__", "touches __code__"),
    ("import torch\ntorch.allclose = lambda *a, **k: True", "writes torch.allclose"),
    ("np.allclose = lambda *a, **k: True", "writes np.allclose"),  # np is bound by the course's cells
    ("import types\nf = types.FunctionType(g.__code__, {})", "builds functions (types.FunctionType)"),
    ("exec(open('x.py').read())", "runs exec()"),
    ("import rlllm_course\nsetattr(rlllm_course.returns, 'gae', None)", "calls setattr"),
])
def test_each_kind_of_attempt_is_named(code, reason):
    assert reason in tamper.suspicious(code)


@pytest.mark.parametrize("code", [
    # ordinary answers: numpy, torch, local variables and attributes of the student's own objects
    "import numpy as np\ndef f(x):\n    out = np.zeros(3)\n    out[0] = x.sum()\n    return out",
    "import torch\ndef f(logp, mask):\n    loss = (logp * mask).sum() / mask.sum()\n    return loss",
    "class A:\n    pass\na = A()\na.value = 3\nd = {}\nd['k'] = 1",
    "from rlllm_course.returns import gae  # delegating earns nothing, but is not tampering",
    "def f(:\n",  # does not parse: it fails on its own
])
def test_ordinary_code_is_not_flagged(code):
    assert tamper.suspicious(code) == []


@pytest.mark.parametrize("name", course.assignments())
def test_the_solutions_and_the_release_are_not_flagged(name):
    # the course's own answer cells, and the stubs students receive, are clean
    sol = solution(name)
    assert tamper.scan_submission(sol, sol) == []
    from conftest import released
    assert tamper.scan_submission(released(name), sol) == []


def test_a_scan_names_the_cell_and_skips_the_courses_code():
    sol = solution("00_rl_basics")
    nb = copy.deepcopy(sol)
    cell = next(c for c in nb["cells"] if nbgrader_meta(c).get("solution"))
    cell["source"] = source(cell) + "\nimport sys\nsys.modules['rlllm_course.grading'] = None\n"
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "import rlllm_course\nrlllm_course.returns.gae = print"})
    found = tamper.scan_submission(nb, sol)
    assert found[0].startswith(nbgrader_meta(cell)["grade_id"] + ":") and "sys.modules" in found[0]
    assert found[1].startswith(f"cell {len([c for c in nb['cells'] if c['cell_type'] == 'code']) - 1}:")
    assert "writes rlllm_course.returns.gae" in found[1]
    # an edited test cell is restored by nbgrader before grading: not the student's code
    test = cell_by_id(nb, "test_discounted_returns")
    test["source"] = "import sys\nsys.setprofile(None)"
    assert len(tamper.scan_submission(nb, sol)) == 2


def test_an_index_is_read_not_written():
    # rewards[torch.arange(B), last] += score writes `rewards`, not torch (a false alarm once)
    code = "import torch\nrewards[torch.arange(len(last)), last] += scores\nw[torch.zeros(1).long()] = 1"
    assert tamper.suspicious(code) == []
    assert tamper.suspicious("import torch\ntorch.arange = f") == ["writes torch.arange"]
    assert tamper.suspicious("import torch\n(a, torch.x) = 1, 2") == ["writes torch.x"]
