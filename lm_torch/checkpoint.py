"""Checkpoints: weights (safetensors) + JSON config + tokenizer, written atomically.

A checkpoint is a directory::

    checkpoint/
      model.safetensors   weights (tied embedding stored once)
      config.json         GPTConfig, tokenizer fingerprint, training step, loss history
      tokenizer.json      the tokenizer (lm_torch.tokenizer)
      optimizer.pt        optimizer state (loaded with torch.load(weights_only=True)), optional

It is built in a temporary sibling directory and renamed into place, so a crash never leaves a
half-written checkpoint: readers see the old one or the new one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from .io import CheckpointError, atomic_write_json, read_json
from .model import GPT, GPTConfig
from .tokenizer import Tokenizer, load_tokenizer

FORMAT_VERSION = 1


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
        atomic_write_json(tmp / "config.json", {
            "format_version": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "tokenizer_fingerprint": tokenizer.fingerprint(),
            "tokenizer_vocab_size": tokenizer.vocab_size,
            **(meta or {}),
        })
        tokenizer.save(tmp / "tokenizer.json")
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


def _model_config(data: dict, path: Path) -> GPTConfig:
    known = {f.name for f in fields(GPTConfig)}
    cfg = data.get("model")
    if not isinstance(cfg, dict) or not set(cfg) <= known:
        raise CheckpointError(f"{path}/config.json has no valid 'model' section")
    try:
        return GPTConfig(**cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}/config.json has an invalid model config: {e}") from None


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
    data = read_json(path / "config.json", "checkpoint config")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {data.get('format_version')!r}, "
                              f"this code reads {FORMAT_VERSION}")
    config = _model_config(data, path)
    tokenizer = load_tokenizer(path / "tokenizer.json")
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"tokenizer in {path} has {tokenizer.vocab_size} tokens but the model expects "
            f"{config.vocab_size}; use the tokenizer saved with this model")
    if data.get("tokenizer_fingerprint") not in (None, tokenizer.fingerprint()):
        raise CheckpointError(f"tokenizer in {path} is not the one the model was trained with "
                              "(fingerprint mismatch)")
    model = GPT(config)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing")
    try:
        load_model(model, str(weights), strict=True, device=map_location)
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"weights {weights} are corrupt or do not fit the model: {e}")\
            from None
    opt_state = None
    if with_optimizer and (path / "optimizer.pt").is_file():
        try:
            opt_state = torch.load(path / "optimizer.pt", weights_only=True,
                                   map_location=map_location)
        except Exception as e:
            raise CheckpointError(f"optimizer state in {path} is corrupt: {e}") from None
    meta = {k: v for k, v in data.items() if k != "model"}
    return Checkpoint(model, tokenizer, meta, opt_state)
