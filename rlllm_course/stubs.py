"""The stub a student finds in place of a solution: it names the function to write.

nbgrader replaces each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region with
``raise NotImplementedError()``, so an unfilled exercise fails its test cell with
a bare ``NotImplementedError:``. ``NamedStubs`` is nbgrader's ``ClearSolutions``
with one change: the error says which function to fill in (``fill in `gae`
above``). ``PREPROCESSORS`` is nbgrader's generation pipeline with it in place,
for ``c.GenerateAssignment.preprocessors`` (both nbgrader configs use it).
"""

import re

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions

BARE = "raise NotImplementedError()"
DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")


def name_stubs(source):
    """`source` with each bare stub raising ``NotImplementedError("fill in `f` above")``.

    `f` is the innermost function whose body holds the stub; a stub outside any
    function asks to fill in the cell.
    """
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.strip() != BARE:
            continue
        indent = len(line) - len(line.lstrip())
        name = None
        for above in reversed(lines[:i]):  # the nearest def indented less than the stub
            m = DEF.match(above)
            if m and len(m.group(1)) < indent:
                name = m.group(2)
                break
        what = f"`{name}`" if name else "this cell"
        lines[i] = line[:indent] + f'raise NotImplementedError("fill in {what} above")'
    return "\n".join(lines)


class NamedStubs(ClearSolutions):
    """ClearSolutions whose stubs name the function to fill in."""

    def _replace_solution_region(self, cell, language):
        replaced = super()._replace_solution_region(cell, language)
        if replaced and cell.cell_type == "code":
            cell.source = name_stubs(cell.source)
        return replaced


PREPROCESSORS = [NamedStubs if p is ClearSolutions else p
                 for p in GenerateAssignment.class_traits()["preprocessors"].default()]
