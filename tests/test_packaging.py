"""Every package the notebooks and rlllm_course import is declared for pip and Binder."""

import ast
import importlib.metadata
import re
import sys
import tomllib


from conftest import ROOT, read_nb, source


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(lines):
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(normalize(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]))
    return names


def imported_modules(code):
    tops = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            tops.add(node.module.split(".")[0])
    return tops


def course_imports():
    modules = set()
    for path in (ROOT / "rlllm_course").rglob("*.py"):
        modules |= imported_modules(path.read_text())
    for path in (ROOT / "solutions").rglob("*.ipynb"):
        for cell in read_nb(path)["cells"]:
            if cell["cell_type"] == "code":
                code = "\n".join(l for l in source(cell).splitlines() if not l.lstrip().startswith(("%", "!")))
                modules |= imported_modules(code)
    return modules - set(sys.stdlib_module_names) - {"rlllm_course"}


def distributions():
    """{distribution: [modules]} for everything the course imports."""
    owners = importlib.metadata.packages_distributions()
    needed = {}
    for module in sorted(course_imports()):
        assert module in owners, f"{module} is imported but not installed"
        for dist in owners[module]:
            needed.setdefault(normalize(dist), []).append(module)
    return needed


def test_pyproject_declares_every_imported_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = requirement_names(project["dependencies"])
    missing = {d: m for d, m in distributions().items() if d not in declared}
    assert not missing, f"imported but not in pyproject dependencies: {missing}"


def test_binder_installs_every_imported_package_and_cpu_torch():
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    declared = requirement_names(lines)
    missing = {d: m for d, m in distributions().items() if d not in declared}
    assert not missing, f"imported but not in binder/requirements.txt: {missing}"
    # torch from the CPU wheel index: Binder has no GPU and PyPI's Linux wheel is CUDA
    assert any("whl/cpu" in l for l in lines) and any(l.startswith("torch==") and "+cpu" in l for l in lines)


def test_binder_and_pyproject_list_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    binder = requirement_names((ROOT / "binder" / "requirements.txt").read_text().splitlines())
    assert requirement_names(project["dependencies"]) == binder


def test_nbgrader_validate_extension_is_enabled_for_students():
    import subprocess
    out = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert re.search(r"nbgrader\S*\s.*enabled", text), text
