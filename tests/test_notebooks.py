"""Every notebook runs top to bottom in FAST mode; each asserts what its prose claims."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def test_there_is_one_notebook_per_book_chapter():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"0{i}" for i in range(1, 10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, builtin_ckpt, tmp_path, monkeypatch):
    monkeypatch.setenv("RLAIF_FAST", "1")
    monkeypatch.setenv("RLAIF_LAB_CACHE", os.environ["RLAIF_LAB_CACHE"])  # the built-in LM
    nb = nbformat.read(path, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert sum("assert" in c.source for c in nb.cells if c.cell_type == "code") >= 2
