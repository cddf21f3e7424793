"""Saving matplotlib figures atomically (temp file, then rename), with the Agg backend."""

from __future__ import annotations

import io
from pathlib import Path

from lm_torch.io import atomic_write_bytes


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 90) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
