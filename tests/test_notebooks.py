"""Every notebook runs top to bottom in FAST mode; each asserts what its prose claims."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_is_one_notebook_per_book_chapter_and_the_frameworks_one():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 11)]


def plots(cell) -> bool:
    """Does this code cell draw a figure?"""
    return "plt." in cell.source and ("show()" in cell.source or "subplots" in cell.source)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, builtin_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("RLAIF_FAST", "1")
    monkeypatch.setenv("RLAIF_LAB_CACHE", os.environ["RLAIF_LAB_CACHE"])  # the built-in LM
    nb = nbformat.read(path, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sum("assert" in c.source for c in nb.cells if c.cell_type == "code") >= 2
    for c in nb.cells:  # every figure is rendered inline (no backend switched to Agg)
        if c.cell_type == "code" and plots(c):
            assert any("image/png" in o.get("data", {}) for o in c.outputs), c.source[:80]
