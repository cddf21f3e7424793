"""Every notebook runs top to bottom in FAST mode and asserts what its prose claims; every
plotting cell renders a figure that is not blank; nothing is written to stderr and no output
says "Warning"; and the teacher's solutions pass the notebook's own exercise checks."""

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: run first in the kernel (not part of the notebook): every figure drawn must hold data
BLANK_FIGURE_GUARD = r'''
import sys as _sys
import numpy as _np
import matplotlib.backend_bases as _bb
_print_figure = _bb.FigureCanvasBase.print_figure
def _visible(line):
    y = _np.asarray(line.get_ydata(), dtype=float)
    n = int(_np.isfinite(y).sum())
    return n >= 2 or (n == 1 and line.get_marker() not in (None, "", " ", "None"))
def _checked_print_figure(self, *args, **kwargs):
    for ax in self.figure.axes:
        if ax.axison and not (ax.images or ax.patches or ax.collections or ax.tables
                              or any(_visible(l) for l in ax.lines)):
            print(f"blank figure: the axes {ax.get_title()!r} show no data", file=_sys.stderr)
    return _print_figure(self, *args, **kwargs)
_bb.FigureCanvasBase.print_figure = _checked_print_figure
'''


def test_there_is_one_notebook_per_book_chapter_and_the_frameworks_one():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 11)]


def plots(cell) -> bool:
    """Does this code cell draw a figure (plt.something beyond the import)?"""
    src = re.sub(r"^\s*(import matplotlib.*|%matplotlib.*)$", "", cell.source, flags=re.M)
    return "plt." in src


def text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return str(output.get("data", {}).get("text/plain", ""))


def execute(path: Path, workdir: Path):
    """Run ``path`` in a fresh kernel (FAST mode), the blank-figure guard first; returns the
    executed notebook without the guard and the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), \
        "notebooks are committed without outputs"
    nb.cells.insert(0, nbformat.v4.new_code_cell(BLANK_FIGURE_GUARD))
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    seconds = time.perf_counter() - t0
    nb.cells.pop(0)
    return nb, seconds


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, builtin_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("RLAIF_FAST", "1")
    monkeypatch.setenv("RLAIF_LAB_CACHE", os.environ["RLAIF_LAB_CACHE"])  # the built-in LM
    nb, seconds = execute(path, tmp_path)
    print(f"{path.name}: {seconds:.1f} s in FAST mode")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum("assert" in c.source for c in code) >= 2
    for c in code:
        for o in c.outputs:
            assert not (o.get("output_type") == "stream" and o.get("name") == "stderr"), \
                f"stderr output in cell {c.source[:60]!r}: {o.get('text', '')[:300]}"
            assert not re.search(r"warning", text_of(o), re.I), \
                f"a warning in the output of {c.source[:60]!r}: {text_of(o)[:300]}"
        if plots(c):  # every figure is rendered inline (no backend switched to Agg)
            assert any("image/png" in o.get("data", {}) for o in c.outputs), c.source[:80]
        if c.source.startswith("check("):  # the teacher's solution passes its hidden tests
            said = "".join(text_of(o) for o in c.outputs)
            assert "passed" in said and "not yet" not in said, f"{c.source}: {said}"
