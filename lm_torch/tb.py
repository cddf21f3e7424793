"""TensorBoard logging for the Torch side without importing TensorFlow.

``torch.utils.tensorboard`` goes through ``tensorboard.compat``, which imports TensorFlow when it
is installed (it is, for ``rl_tf``). TensorBoard's own TF-free build marks itself with a module
``tensorboard.compat.notf``; registering that marker keeps ``lm_torch`` free of TensorFlow (the
import rule of DESIGN.md) and saves seconds of start-up.
"""

from __future__ import annotations

import sys
import types


def summary_writer(log_dir: str):
    """A ``torch.utils.tensorboard.SummaryWriter`` that never imports TensorFlow."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf",
                               types.ModuleType("tensorboard.compat.notf"))
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir)
