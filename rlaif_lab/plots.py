"""Figures of runs and sweeps, made with matplotlib's object-oriented API.

``new_figure`` builds a ``matplotlib.figure.Figure`` without pyplot, so nothing switches the
global backend (a notebook keeps its inline backend and shows the figure when it is displayed);
``save_figure`` writes it atomically as PNG.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from bridge.files import atomic_write_figure


def new_figure(figsize=(7, 3.6), ncols: int = 1):
    """(figure, axes): one axes, or a row of ``ncols``."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols)


def save_figure(fig: Figure, path: Path, dpi: int = 90) -> None:
    atomic_write_figure(fig, path, dpi=dpi)
