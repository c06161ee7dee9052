"""What a submission's own code does to the grader: flagged for the instructor.

An answer cell runs in the kernel that later runs the hidden tests, so it can
try to get past them: replace the guard (``rlllm_course.grading``), swap a
module in ``sys.modules``, patch a function's ``__code__``, switch a profiling
hook off, or overwrite an attribute of ``rlllm_course``, ``torch``, ``numpy``.
``rlllm_course.grading`` resists what it can at run time; this module reads
the code a student wrote (the answer cells and any cell the student added or
edited) and lists what looks like such an attempt, so that ``grade`` can put
it in the ``problem`` column. It only reads: the score is the instructor's call.
"""

import ast

# Modules whose attributes a submission has no reason to overwrite.
PROTECTED_ROOTS = ("rlllm_course", "torch", "numpy", "nbgrader", "sys", "builtins", "importlib",
                   "types", "inspect", "gc", "contextlib")
# Attributes whose mention alone is a sign: they reach into code objects, the import system,
# the interpreter's hooks or the grader's own names.
SUSPECT_ATTRIBUTES = {
    "__code__": "touches __code__", "__globals__": "touches __globals__",
    "__closure__": "touches __closure__", "__builtins__": "touches __builtins__",
    "modules": "uses sys.modules", "meta_path": "uses sys.meta_path", "path_hooks": "uses sys.path_hooks",
    "setprofile": "changes the profiling hook", "settrace": "changes the tracing hook",
    "monitoring": "uses sys.monitoring", "FunctionType": "builds functions (types.FunctionType)",
    "CodeType": "builds code objects (types.CodeType)", "getsource": "reads the package's source",
    "get_objects": "walks the garbage collector", "get_referents": "walks the garbage collector",
    "reference_disabled": "names the reference guard", "ReferenceUsedError": "names the reference guard",
    "GuardTamperedError": "names the reference guard",
}
SUSPECT_NAMES = {"exec": "runs exec()", "eval": "runs eval()", "compile": "runs compile()",
                 "__import__": "calls __import__", "setattr": "calls setattr", "delattr": "calls delattr",
                 "ctypes": "uses ctypes", "importlib": "uses importlib", "builtins": "uses builtins",
                 "reference_disabled": "names the reference guard", "grading": "names rlllm_course.grading"}


def _modules_bound(tree):
    """{local name: module path} for the imports in `tree` (``import a.b as c``, ``from a import b``)."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _root(node):
    """The name at the root of an attribute chain or subscript (``a`` of ``a.b[0].c``)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _written(target):
    """The nodes a store to `target` writes through: tuple elements, and for ``a.b[i].c`` the chain
    ``a.b[i].c``, ``a.b[i]``, ``a.b``, not the index ``i`` (``x[torch.arange(3)] = 0`` writes x only)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _written(element)
    elif isinstance(target, ast.Starred):
        yield from _written(target.value)
    else:
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            yield target
            target = target.value


def _protected(module_path):
    return module_path.split(".")[0] in PROTECTED_ROOTS


def suspicious(code, known_imports=None):
    """Reasons (sorted, unique) why `code` looks like an attempt on the grader.

    code: the source of one cell. known_imports: {name: module path} bound by the
    course's own cells (e.g. ``reference`` for ``from rlllm_course import returns as
    reference``), so that a write to ``reference.gae`` is seen as a write to the package.
    A cell that does not parse gives no reasons (it fails on its own).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    bound = {**(known_imports or {}), **_modules_bound(tree)}
    bound.setdefault("np", "numpy")
    reasons = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for t in _written(target):
                if isinstance(t, ast.Attribute):
                    root = _root(t)
                    if root in bound and _protected(bound[root]):
                        reasons.add(f"writes {ast.unparse(t)}")
                elif isinstance(t, ast.Subscript) and _root(t) in bound and bound[_root(t)] == "sys":
                    reasons.add(f"writes {ast.unparse(t)}")
        if isinstance(node, ast.Attribute) and node.attr in SUSPECT_ATTRIBUTES:
            reasons.add(SUSPECT_ATTRIBUTES[node.attr])
        if isinstance(node, ast.Name) and node.id in SUSPECT_NAMES:
            reasons.add(SUSPECT_NAMES[node.id])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
            for name in names:
                if name.split(".")[0] in ("ctypes", "importlib", "builtins", "gc") or "grading" in name:
                    reasons.add(f"imports {name}")
                if name in SUSPECT_ATTRIBUTES:
                    reasons.add(SUSPECT_ATTRIBUTES[name])
    return sorted(reasons)


def _cells(nb):
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"], c)
            for c in nb["cells"] if c["cell_type"] == "code"]


def scan_submission(submitted, source):
    """Reasons found in the code a student wrote, as ``"<cell>: <reason>, …"`` strings.

    submitted, source: the student's notebook and the course's source notebook, as
    dicts (nbformat JSON). A code cell is the student's when it is an answer cell or
    when its text is not one of the source's cells (added or edited by the student);
    test cells are skipped, nbgrader restores them before grading.
    """
    course_cells = {text for text, _ in _cells(source)}
    known = {}
    for text, _ in _cells(source):
        try:
            known.update(_modules_bound(ast.parse(text)))
        except SyntaxError:
            pass
    found = []
    for i, (text, cell) in enumerate(_cells(submitted)):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            continue  # a test cell: restored from the gradebook
        if not meta.get("solution") and text in course_cells:
            continue  # the course's own code, unchanged
        reasons = suspicious(text, known)
        if reasons:
            found.append(f"{meta.get('grade_id') or f'cell {i}'}: {', '.join(reasons)}")
    return found
