"""The tagged cells of a lab notebook, and the student's copy made from the teacher's.

The teacher's notebook is the chapter notebook itself; a few cell tags make it a lab (they
are ordinary Jupyter cell tags, View -> Cell Toolbar -> Tags):

``setup``     a code cell the grader runs, in order, before the exercises (imports, data);
``solution``  an exercise cell, with ``"rlaif_lab": {"exercise": "<id>"}`` in its metadata;
              the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are the
              solution: the student's copy has ``raise NotImplementedError(...)`` there (code)
              or "YOUR ANSWER HERE" (markdown), and keeps the signature and the docstring;
``teacher``   a cell the student's copy leaves out (notes for the teacher).

Everything else is copied as it is, without outputs.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
ANSWER_HERE = "YOUR ANSWER HERE"
STUB = 'raise NotImplementedError("exercise {id}: write your solution here")'
_MARK = re.compile(r"^([ \t]*)### (BEGIN|END) SOLUTION[ \t]*$")


class NotebookError(Exception):
    """A notebook that cannot be read or is not a lab notebook; the message says why."""


def read(path: str | Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (nbformat 4), or :class:`NotebookError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"{path} does not exist")
    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except (UnicodeDecodeError, json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        raise NotebookError(f"{path} is not a notebook (invalid JSON: {e}); restore it from "
                            "your editor's checkpoint or start the lab again in a new --dir")
    except Exception as e:  # nbformat raises several kinds on malformed structure
        raise NotebookError(f"{path} is not a valid notebook: {e}")


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("rlaif_lab", {})
    return meta.get("exercise") if isinstance(meta, dict) else None


def setup_sources(nb) -> list[str]:
    """The sources of the ``setup`` cells, in order."""
    return [c.source for c in nb.cells if c.cell_type == "code" and "setup" in tags(c)]


def exercise_cells(nb) -> dict[str, list]:
    """Exercise id -> its cells (usually one; a duplicated cell keeps its metadata)."""
    out: dict[str, list] = {}
    for c in nb.cells:
        ex = exercise_id(c)
        if ex is not None and "solution" in tags(c):
            out.setdefault(ex, []).append(c)
    return out


def strip_solution(source: str, exercise: str, markdown: bool) -> str:
    """The student's version of a solution cell's source."""
    lines, out, inside, found = source.splitlines(), [], False, False
    for line in lines:
        m = _MARK.match(line)
        if m and m.group(2) == "BEGIN":
            if inside:
                raise NotebookError(f"exercise {exercise}: {BEGIN} twice without {END}")
            inside, found = True, True
            out.append(m.group(1) + (ANSWER_HERE if markdown else STUB.format(id=exercise)))
        elif m:
            if not inside:
                raise NotebookError(f"exercise {exercise}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"exercise {exercise}: {BEGIN} without {END}")
    if not found:  # no markers: the whole cell is the solution
        out = [ANSWER_HERE if markdown else STUB.format(id=exercise)]
    return "\n".join(out)


def student_copy(nb, lab_number: str):
    """The student's notebook: solutions replaced by stubs, teacher cells left out, no outputs."""
    nb = copy.deepcopy(nb)
    cells = []
    for c in nb.cells:
        if "teacher" in tags(c):
            continue
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        if "solution" in tags(c):
            ex = exercise_id(c)
            if ex is None:
                raise NotebookError("a cell tagged 'solution' has no rlaif_lab.exercise id "
                                    "in its metadata")
            c.source = strip_solution(c.source, ex, c.cell_type == "markdown")
        cells.append(c)
    nb.cells = cells
    nb.metadata["rlaif_lab"] = {"lab": lab_number, "copy": "student"}
    return nb


def answered(cells) -> bool:
    """Has an open question (markdown) been answered: text other than the placeholder?"""
    text = " ".join(c.source for c in cells).replace(ANSWER_HERE, "")
    return bool(re.sub(r"[\s*_#>-]+", "", text))


def write_new(nb, path: Path) -> None:
    """Write ``nb`` to ``path`` atomically, refusing to replace an existing file."""
    from bridge.files import atomic_write_text

    if path.exists():
        raise FileExistsError(str(path))
    atomic_write_text(path, nbformat.writes(nb))
