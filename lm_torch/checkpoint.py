"""Checkpoints: weights (safetensors) + JSON config + tokenizer, written atomically.

A checkpoint is a directory::

    checkpoint/
      model.safetensors   weights (tied embedding stored once)
      config.json         GPTConfig, tokenizer fingerprint, SHA-256 of the weights and of the
                          tokenizer, training step, loss history
      tokenizer.json      the tokenizer (lm_torch.tokenizer)
      optimizer.pt        optimizer state (loaded with torch.load(weights_only=True)), optional

It is built in a temporary sibling directory and renamed into place, so a crash never leaves a
half-written checkpoint: readers see the old one or the new one.

Loading trusts nothing in the directory. The files must match the SHA-256 recorded when they were
saved; the config's sizes must match the tensor shapes in the safetensors header, checked before
any model is allocated (an edited ``n_embd`` cannot ask for gigabytes); the weights must be
finite. A checkpoint saved before hashes were recorded loads with the shape and finiteness checks
only. The same checks guard the encoder judges (``judges.load_encoder``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from .io import CheckpointError, atomic_write_json, read_json
from .model import GPT, GPTConfig
from .tokenizer import Tokenizer, load_tokenizer

FORMAT_VERSION = 1
HASHED = ("model.safetensors", "tokenizer.json")  #: the files whose SHA-256 config.json records


@dataclass
class Checkpoint:
    model: GPT
    tokenizer: Tokenizer
    meta: dict[str, Any]  #: everything in config.json besides the model config
    optimizer_state: dict | None = None


def save_checkpoint(path: str | os.PathLike, model: GPT, tokenizer: Tokenizer,
                    meta: dict[str, Any] | None = None, optimizer=None) -> Path:
    """Write a checkpoint directory atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        tokenizer.save(tmp / "tokenizer.json")
        atomic_write_json(tmp / "config.json", {
            "format_version": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "tokenizer_fingerprint": tokenizer.fingerprint(),
            "tokenizer_vocab_size": tokenizer.vocab_size,
            **(meta or {}),
            "sha256": {name: file_sha256(tmp / name) for name in HASHED},
        })
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        old = path.with_name(path.name + ".old")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# --- checks of untrusted files, shared with judges.load_encoder ----------------------------------
def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of the file's bytes, read in chunks."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def check_hashes(folder: Path, data: dict, names: Sequence[str], where: str) -> None:
    """CheckpointError if a file ``folder/name`` does not match the SHA-256 recorded for it in
    ``data["sha256"]``. Nothing is checked if no hash was recorded (an older save)."""
    record = data.get("sha256")
    if record is None:
        return
    if not isinstance(record, dict):
        raise CheckpointError(f"{where} has an invalid 'sha256' record (not a JSON object); "
                              "restore it or retrain")
    for name in names:
        want = record.get(name)
        if not isinstance(want, str):
            raise CheckpointError(f"{where} records no hash for {name}; restore it or retrain")
        if file_sha256(folder / name) != want.lower():
            raise CheckpointError(f"{folder / name} does not match its recorded hash: the file is "
                                  "corrupt or was edited; retrain or restore it")


def config_from_json(cls, section: Any, where: str):
    """``cls(**section)`` if ``section`` is a JSON object of known fields, each of the type of its
    default; else CheckpointError saying what is wrong (never a TypeError or KeyError)."""
    if section is None:
        raise CheckpointError(f"{where} is missing; restore the file or retrain")
    if not isinstance(section, dict):
        raise CheckpointError(f"{where} is not a JSON object (it holds a "
                              f"{type(section).__name__}); restore the file or retrain")
    kinds = {f.name: type(f.default) for f in fields(cls) if f.default is not MISSING}
    for key, value in section.items():
        if key not in kinds:
            raise CheckpointError(f"{where} has an unknown field {key!r} (known: "
                                  f"{', '.join(kinds)}); restore the file or retrain")
        kind = kinds[key]
        if kind is bool:
            ok = isinstance(value, bool)
        else:  # JSON has no int/float distinction for whole floats; bools are not numbers here
            ok = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float
                                                            else kind)
        if not ok:
            raise CheckpointError(f"{where}: {key} must be a {kind.__name__}, not {value!r}")
    try:
        return cls(**section)
    except (TypeError, ValueError, ArithmeticError) as e:
        raise CheckpointError(f"{where} is invalid: {e}") from None


def header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in a safetensors file, from its header; no tensor is read."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a corrupt header
        raise CheckpointError(f"weights {weights} are corrupt (unreadable header: {e}); retrain "
                              "or restore them") from None


class _SkipNormalInit(torch.overrides.TorchFunctionMode):
    """``normal_`` does nothing: a skeleton on the meta device has no values to draw, and
    torch's meta kernel for it imports ``torch._dynamo`` (about 2 s) the first time -- paid for
    nothing by a process that only loads a checkpoint (a rollout worker, ``rlaif-lab
    sample``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.normal_, torch.nn.init.normal_):
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def check_weights_fit(weights: Path, where: str, n_layer: int, prefix: str,
                      build: Callable[[], nn.Module], tied: Sequence[Sequence[str]] = ()) -> None:
    """CheckpointError unless ``weights`` holds exactly the tensors of ``build()``, shape for
    shape. ``build`` runs on the meta device (no memory), and only once the config's
    ``n_layer`` equals the number of ``prefix<i>.`` layers in the file. ``tied``: groups of
    names that share one tensor, of which the file holds any one."""
    shapes = header_shapes(weights)
    found = len({k.split(".")[1] for k in shapes if k.startswith(prefix)})
    if found != n_layer:
        raise CheckpointError(f"{where} says {n_layer} layers but {weights} holds {found}: the "
                              "config was edited or belongs to other weights; restore it or "
                              "retrain")
    try:
        with torch.device("meta"), _SkipNormalInit():
            skeleton = build()
    except Exception as e:  # a config that no model can have
        raise CheckpointError(f"{where} describes no valid model: {e}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    for group in tied:
        if any(k in shapes for k in group):
            for k in group:
                if k not in shapes:
                    del expected[k]
    wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]  # model order
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"{where} does not fit {weights}: tensor {k} is {shapes[k]} in the file but "
            f"{expected[k]} by the config ({len(wrong)} tensors differ); the config was edited or "
            "belongs to other weights; restore it or retrain")
    missing, extra = sorted(expected.keys() - shapes.keys()), sorted(shapes.keys() - expected)
    if missing or extra:
        raise CheckpointError(f"{weights} does not hold the tensors of the model in {where} "
                              f"(missing: {missing[:3]}, unexpected: {extra[:3]}); restore it or "
                              "retrain")


def check_finite(module: nn.Module, weights: Path) -> None:
    """CheckpointError naming the first tensor of ``module`` that holds NaN or inf."""
    for name, t in module.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{weights} holds NaN or inf in tensor {name}: the run that "
                                  "wrote it diverged or the file was edited; retrain or restore it")


def load_checkpoint(path: str | os.PathLike, with_optimizer: bool = False,
                    map_location: str = "cpu") -> Checkpoint:
    """Load a checkpoint directory; raise :class:`CheckpointError` saying what is wrong."""
    path = Path(path)
    if not path.is_dir():
        old = path.with_name(path.name + ".old")
        if old.is_dir():  # a crash between the two renames of save_checkpoint
            path = old
        else:
            raise CheckpointError(f"checkpoint {path} does not exist; train one first "
                                  "(rlaif-lab pretrain --out DIR writes DIR/checkpoint)")
    where = f"{path}/config.json"
    data = read_json(path / "config.json", "checkpoint config")
    if not isinstance(data, dict):
        raise CheckpointError(f"{where} is not a JSON object (it holds a {type(data).__name__}); "
                              "restore it or retrain")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {data.get('format_version')!r}, "
                              f"this code reads {FORMAT_VERSION}")
    config = config_from_json(GPTConfig, data.get("model"), f"{where} 'model' section")
    tokenizer = load_tokenizer(path / "tokenizer.json")
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"tokenizer in {path} has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}; use the tokenizer saved with this model")
    if data.get("tokenizer_fingerprint") not in (None, tokenizer.fingerprint()):
        raise CheckpointError(f"tokenizer in {path} is not the one the model was trained with "
                              "(fingerprint mismatch)")
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    check_hashes(path, data, HASHED, where)
    check_weights_fit(weights, where, config.n_layer, "blocks.", lambda: GPT(config),
                      tied=[("wte.weight", "lm_head.weight")])
    model = GPT(config)
    try:
        load_model(model, str(weights), strict=True, device=map_location)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"weights {weights} are corrupt or do not fit the model: {e}")\
            from None
    check_finite(model, weights)
    opt_state = None
    if with_optimizer and (path / "optimizer.pt").is_file():
        try:
            opt_state = torch.load(path / "optimizer.pt", weights_only=True,
                                   map_location=map_location)
        except Exception as e:
            raise CheckpointError(f"optimizer state in {path} is corrupt: {e}") from None
    meta = {k: v for k, v in data.items() if k != "model"}
    return Checkpoint(model, tokenizer, meta, opt_state)
