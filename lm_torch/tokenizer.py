"""Tokenizers with one interface: character-level (for teaching) and BPE (the default).

Book 4.1.1 factorises P(w_1..w_n) over tokens; a tokenizer decides what a token is. Both kinds
share the special tokens ``<pad>`` (0), ``<bos>`` (1) and ``<eos>`` (2), encode to lists of ids,
pad batches to NumPy arrays, and save to one JSON file that is stored beside the model weights.
The BPE tokenizer is trained with Hugging Face ``tokenizers`` (byte-level, GPT-2 style), so
``decode(encode(text)) == text`` for any text.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .io import CheckpointError, atomic_write_text

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)


class TokenizerError(ValueError):
    """A tokenizer file that cannot be read, or text it cannot encode."""


class Tokenizer:
    """Common interface. Subclasses implement ``_encode``, ``_decode``, ``to_json``."""

    pad_id, bos_id, eos_id = 0, 1, 2
    kind = "base"

    @property
    def vocab_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, text: str) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, ids: list[int]) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_json(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- the shared interface -----------------------------------------------------------------
    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = self._encode(text)
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], stop_at_eos: bool = True) -> str:
        """Text of ``ids``; special tokens are dropped, and decoding stops at the first EOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id and stop_at_eos:
                break
            if i >= len(SPECIALS):
                out.append(i)
        return self._decode(out)

    def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False,
                     left_pad: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Encode and pad: (ids int64 [B, T] padded with ``pad_id``, lengths int64 [B])."""
        seqs = [self.encode(t, bos=bos, eos=eos) for t in texts]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        width = int(lengths.max()) if len(seqs) else 0
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        for b, s in enumerate(seqs):
            if left_pad:
                ids[b, width - len(s):] = s
            else:
                ids[b, : len(s)] = s
        return ids, lengths

    def decode_batch(self, ids: np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(row) for row in ids]

    def fingerprint(self) -> str:
        """A short hash of everything that defines the token ids (used by the bridge)."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_json()))


class CharTokenizer(Tokenizer):
    """One token per character of a fixed alphabet (book 1.1.1's earliest language models)."""

    kind = "char"

    def __init__(self, chars: Sequence[str]):
        chars = list(dict.fromkeys(chars))
        if any(len(c) != 1 for c in chars):
            raise TokenizerError("CharTokenizer alphabet must be single characters")
        self.chars = chars
        self._index = {c: i + len(SPECIALS) for i, c in enumerate(chars)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        return cls(sorted(set("".join(texts))))

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def _encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError as e:
            raise TokenizerError(f"character {e.args[0]!r} is not in the tokenizer's alphabet")\
                from None

    def _decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i - len(SPECIALS)] for i in ids if i - len(SPECIALS)
                       < len(self.chars))

    def to_json(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class BPETokenizer(Tokenizer):
    """Byte-level BPE trained with Hugging Face ``tokenizers`` (the default)."""

    kind = "bpe"

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        for i, s in enumerate(SPECIALS):
            if self.hf.token_to_id(s) != i:
                raise TokenizerError(f"BPE tokenizer must map {s} to id {i}")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 512) -> "BPETokenizer":
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def _encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def _decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    def to_json(self) -> dict:
        return {"kind": self.kind, "hf": json.loads(self.hf.to_str())}


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 512) -> Tokenizer:
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size)
    if kind == "char":
        return CharTokenizer.train(texts)
    raise TokenizerError(f"unknown tokenizer kind {kind!r}; use 'bpe' or 'char'")


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load a tokenizer JSON file written by :meth:`Tokenizer.save`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"tokenizer file {path} does not exist")
    try:
        data = json.loads(path.read_text())
        kind = data["kind"]
        if kind == "char":
            return CharTokenizer(data["chars"])
        if kind == "bpe":
            from tokenizers import Tokenizer as HFTokenizer

            return BPETokenizer(HFTokenizer.from_str(json.dumps(data["hf"])))
    except Exception as e:  # json, KeyError, and HF's plain Exception alike
        raise CheckpointError(f"tokenizer file {path} is corrupt or unreadable: {e}") from None
    raise CheckpointError(f"tokenizer file {path} has unknown kind {kind!r}")
