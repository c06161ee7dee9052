"""The notebooks' text: no control characters, and every formula renders.

A Python string escape in a script that writes a notebook silently eats a
backslash (``"\\approx"`` written as ``"\approx"`` becomes BEL + ``pprox``); the
formula then shows as red text in JupyterLab. The formulas are typeset with
MathJax 3, the renderer JupyterLab uses (``tests/latex/render.js``; ``make test``
installs mathjax-full under ``.venv/mathjax``).
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, read_nb, source

NOTEBOOKS = sorted(ROOT.glob("solutions/*/*.ipynb")) + sorted(ROOT.glob("notebooks/*/*.ipynb"))
MATHJAX = ROOT / ".venv" / "mathjax" / "node_modules"

CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)  # fenced blocks and inline code hold no math
MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def formulas(markdown):
    """([(tex, display)], text left once the math is out), the way JupyterLab splits it."""
    text = CODE.sub(" ", markdown)
    found = [(next(g for g in m.groups() if g is not None), m.group(0).startswith(("$$", r"\[")))
             for m in MATH.finditer(text)]
    return found, MATH.sub(" ", text)


def control_characters(text):
    return sorted({hex(ord(ch)) for ch in text if ord(ch) < 32 and ch not in "\n\t\r"})


def test_formulas_are_split_as_jupyterlab_splits_them():
    found, rest = formulas(r"a $x_t$ and `$not math$` then $$\sum_k \gamma^k$$ costs \$5")
    assert found == [("x_t", False), (r"\sum_k \gamma^k", True)]
    assert "$" not in rest.replace(r"\$", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_no_control_characters_and_balanced_dollars(path):
    for i, cell in enumerate(read_nb(path)["cells"]):
        text = source(cell)
        assert not control_characters(text), f"cell {i} holds control characters {control_characters(text)}"
        if cell["cell_type"] == "markdown":
            _, rest = formulas(text)
            assert "$" not in rest.replace(r"\$", ""), f"cell {i}: an unmatched $ in {text[:200]!r}"


def test_every_formula_renders_in_mathjax():
    node = shutil.which("node")
    if node is None or not MATHJAX.is_dir():
        pytest.fail("needs node and mathjax-full: `make test` installs it into .venv/mathjax")
    items, where = [], []
    for path in NOTEBOOKS:
        for i, cell in enumerate(read_nb(path)["cells"]):
            if cell["cell_type"] == "markdown":
                for tex, display in formulas(source(cell))[0]:
                    items.append((tex, display))
                    where.append(f"{path.relative_to(ROOT)} cell {i}")
    assert len(items) > 100  # the course has a few hundred formulas: the split found them
    done = subprocess.run([node, str(ROOT / "tests" / "latex" / "render.js")], input=json.dumps(items),
                          capture_output=True, text=True, env=dict(os.environ, NODE_PATH=str(MATHJAX)),
                          timeout=300)
    assert done.returncode == 0, done.stderr
    failures = [f"{where[i]}: {message} in ${items[i][0]}$" for i, message in json.loads(done.stdout)]
    assert not failures, "\n".join(failures)
