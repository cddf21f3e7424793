"""Where the PyTorch side computes: ``--device auto|cpu|cuda`` (DESIGN.md: a GPU is used when
present). ``auto`` is CUDA when ``torch.cuda.is_available()``, else the CPU.

The rule everywhere else in ``lm_torch``: **the data follows the module**. A caller puts a model
on a device once (``model.to(device)``); training loops, judges, reward models and samplers move
their inputs to the device of the module's parameters and bring outputs back to the CPU as
NumPy. Nothing else in the package names a device.
"""

from __future__ import annotations

import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch.device for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ValueError naming the
    fix when CUDA is asked for and none is visible."""
    if isinstance(name, torch.device):
        name = str(name)
    base = name.split(":", 1)[0]
    if base not in DEVICES or (base != "cuda" and ":" in name):
        raise ValueError(f"unknown device {name!r}; use one of {', '.join(DEVICES)} (or cuda:N)")
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA device is visible "
                         "(torch.cuda.is_available() is False); use --device cpu or auto")
    return torch.device(name)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU for a module without any)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run the block with ``n`` intra-op CPU threads, then restore the previous count. (A CPU
    kernel splits its sums by thread, so the thread count is part of a result's last digits.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
