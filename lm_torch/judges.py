"""AI judges: the feedback sources of book 2.3.3 and 3.2.1 (and the RLAIF paper's AI labeler).

Every judge has one batch API, ``judge.score(prompts, completions) -> float32 [B]`` (higher is
better), a ``name`` and a documented score ``range``:

* :class:`ClassifierJudge` -- the book's TransformerEncoder (listing 5.1.1) used as what it is,
  a *bidirectional* encoder, with a mean-pooling head; trained on the corpus labels of the
  run's tasks (sentiment for reviews, helpful and polite for dialogues, faithful for summaries,
  correct for answers: one judge reads the task from the text). Score: the logit margin
  log P(good) - log P(bad) of the whole text, in (-inf, inf).
* :class:`FluencyJudge` -- the reference LM's mean log-probability of the completion given the
  prompt, in (-inf, 0].
* rule critics, a small written constitution (Constitutional AI's principles as critics):
  :class:`RepetitionCritic` (-share of repeated word bigrams, in [-1, 0]),
  :class:`LengthCritic` (-|words - target| / target, in [-1, 0]),
  :class:`BannedWordsCritic` (-number of banned words, in (-inf, 0]),
  :class:`GrammarCritic` (0 if the grammar accepts the text's form, else -1),
  :class:`VarietyCritic` (say something new, for open-ended reviews, in [-3, 0]),
  :class:`HarmCritic` (the dialogue constitution: do not insult or dismiss, in [-2, 0]),
  :class:`GroundingCritic` (summaries and answers: name only what the source mentions, in
  [-1, 0]).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bridge.config import check_config

from . import grammar
from .device import module_device
from .human import CONTENT_WORDS, sentences
from .model import GPT
from .tasks import dialogue, kgqa
from .tokenizer import Tokenizer


class Judge(Protocol):
    name: str
    range: tuple[float, float]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray: ...


def join(prompt: str, completion: str) -> str:
    return f"{prompt} {completion}".strip()


def as_texts(tokenizer: Tokenizer | None, xs) -> list[str]:
    """Strings as they are; token-id rows (lists or a padded int array) decoded."""
    out = []
    for x in xs:
        if isinstance(x, str):
            out.append(x)
        elif tokenizer is None:
            raise TypeError("token ids need a tokenizer to be scored")
        else:
            out.append(tokenizer.decode(x).strip())
    return out


def score_batch(judge: Judge, prompts, completions, tokenizer: Tokenizer | None = None):
    """One batch API for every judge, over strings or token arrays: float32 [B]."""
    return judge.score(as_texts(tokenizer, prompts), as_texts(tokenizer, completions))


# --- the classifier judge: listing 5.1.1 as a bidirectional encoder ------------------------------
@dataclass(frozen=True)
class EncoderConfig:
    """Shape and training of the judges and reward models: an encoder (listing 5.1.1), or the
    language model itself (``backbone: lm``, ``lm_torch.lm_scorer``; the shape fields are then
    the LM's own)."""

    backbone: Literal["encoder", "lm"] = field(default="encoder", metadata={
        "help": "encoder (the book's TransformerEncoder, from scratch) or lm (the SFT model, "
                "scoring by its calibrated log-likelihood)"})
    d_model: int = field(default=64, metadata={"help": "encoder width"})
    nhead: int = field(default=4, metadata={"help": "attention heads"})
    num_layers: int = field(default=2, metadata={"help": "TransformerEncoderLayers"})
    max_len: int = field(default=128, metadata={"help": "longest input in tokens"})
    steps: int = field(default=600, metadata={"help": "training steps"})
    batch_size: int = field(default=64, metadata={"help": "examples per step"})
    lr: float = field(default=2e-3, metadata={"help": "AdamW learning rate"})
    seed: int = field(default=0, metadata={"help": "initialisation and batch order"})
    soft_labels: bool = field(default=True, metadata={
        "help": "classifier targets sigma(gold score) (graded) instead of the 0/1 label"})

    def __post_init__(self):
        check_config(self, positive=("steps", "batch_size", "lr"))


class TextEncoder(nn.Module):
    """Token + position embeddings, listing 5.1.1's stack of ``nn.TransformerEncoderLayer``
    (no causal mask: every token sees the whole text), masked mean pooling, a linear head."""

    def __init__(self, vocab_size: int, cfg: EncoderConfig, n_out: int):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.d_model, cfg.nhead, 4 * cfg.d_model, dropout=0.0,
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, n_out)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (B, T), mask (B, T) True for real tokens -> (B, n_out)."""
        T = ids.shape[1]
        x = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))  # (B, T, C)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        m = mask[..., None].float()
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, C): mean over real tokens
        return self.head(pooled)


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_len: int):
    """(ids (B, T), mask (B, T)) right-padded, cut to ``max_len`` tokens."""
    seqs = [tokenizer.encode(t)[:max_len] or [tokenizer.pad_id] for t in texts]
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.bool)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = True
    return ids, mask


@torch.inference_mode()
def encoder_outputs(encoder: TextEncoder, tokenizer: Tokenizer, texts: Sequence[str],
                    batch_size: int = 256) -> np.ndarray:
    """The encoder's outputs for ``texts``, in batches: float32 [N, n_out]."""
    out = [np.zeros((0, encoder.head.out_features), np.float32)]
    device = module_device(encoder)
    for i in range(0, len(texts), batch_size):
        ids, mask = encode_texts(tokenizer, texts[i: i + batch_size], encoder.cfg.max_len)
        out.append(encoder(ids.to(device), mask.to(device)).float().cpu().numpy())
    return np.concatenate(out)


class ClassifierJudge:
    """Scores how good a text is for its task (positive, helpful and polite, faithful,
    correct): a logit margin."""

    name = "classifier"
    range = (-math.inf, math.inf)

    def __init__(self, encoder: TextEncoder, tokenizer: Tokenizer):
        self.encoder, self.tokenizer = encoder.eval(), tokenizer

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return encoder_outputs(self.encoder, self.tokenizer, texts)

    def score(self, prompts, completions) -> np.ndarray:
        z = self.logits([join(p, c) for p, c in zip(prompts, completions)])
        return (z[:, 1] - z[:, 0]).astype(np.float32)

    def accuracy(self, records) -> float:
        z = self.logits([r.text for r in records])
        return float(np.mean(z.argmax(-1) == np.array([r.label for r in records])))

    def state(self) -> dict:
        return {"config": asdict(self.encoder.cfg), "weights": self.encoder.state_dict()}


def warmup_cosine(step: int, cfg: EncoderConfig, warmup: int = 50) -> float:
    """The encoders' learning rate: linear warmup times a cosine decay to 0 at ``cfg.steps``."""
    return cfg.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step
                                                                         / cfg.steps))


def train_classifier_judge(records, tokenizer: Tokenizer, cfg: EncoderConfig = EncoderConfig(),
                           progress: bool = False, device: str | torch.device = "cpu"
                           ) -> ClassifierJudge:
    """Fit the encoder to the corpus labels with cross-entropy (book 3.2.1: an AI feedback
    source learnt from labelled text). With ``soft_labels`` the target is the label's graded
    confidence sigma(gold score), so that the margin ranks texts, not only classifies them."""
    torch.manual_seed(cfg.seed)
    enc = TextEncoder(tokenizer.vocab_size, cfg, 2).to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr, weight_decay=0.01)
    texts = [r.text for r in records]
    if cfg.soft_labels:  # the corpus's graded label: P(positive) = sigma(score)
        p = torch.sigmoid(torch.tensor([r.score for r in records], dtype=torch.float32))
        labels = torch.stack([1 - p, p], -1)  # (N, 2) probability targets
    else:
        labels = torch.tensor([r.label for r in records])
    labels = labels.to(device)
    rng = np.random.default_rng(cfg.seed)
    enc.train()
    for step in range(cfg.steps):
        idx = rng.integers(0, len(texts), cfg.batch_size)
        ids, mask = encode_texts(tokenizer, [texts[i] for i in idx], cfg.max_len)
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, cfg)
        loss = F.cross_entropy(enc(ids.to(device), mask.to(device)),
                               labels[torch.from_numpy(idx).to(device)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
    return ClassifierJudge(enc, tokenizer)


# --- the fluency judge ------------------------------------------------------------------------
class FluencyJudge:
    """The reference LM's mean log P(completion token | everything before it)."""

    name = "fluency"
    range = (-math.inf, 0.0)

    def __init__(self, model: GPT, tokenizer: Tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer

    @torch.inference_mode()
    def score(self, prompts, completions, batch_size: int = 128) -> np.ndarray:
        tok, out = self.tokenizer, []
        block = self.model.config.block_size
        for i in range(0, len(prompts), batch_size):
            rows, starts = [], []
            for p, c in zip(prompts[i: i + batch_size], completions[i: i + batch_size]):
                pi = [tok.bos_id] + tok.encode(p)
                ci = tok.encode(" " + c, eos=True) if c else [tok.eos_id]
                rows.append((pi + ci)[:block])
                starts.append(min(len(pi), block - 1))
            T = max(len(r) for r in rows)
            ids = torch.full((len(rows), T), tok.pad_id, dtype=torch.long)
            for b, r in enumerate(rows):
                ids[b, : len(r)] = torch.tensor(r)
            ids = ids.to(module_device(self.model))
            logp = torch.log_softmax(self.model(ids).logits.float(), -1)  # (B, T, V)
            tgt = logp[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1).cpu()  # (B, T-1)
            for b, r in enumerate(rows):
                seg = tgt[b, starts[b] - 1: len(r) - 1]
                out.append(float(seg.mean()) if len(seg) else 0.0)
        return np.asarray(out, dtype=np.float32)


# --- the constitution: rule critics -----------------------------------------------------------
class RepetitionCritic:
    """Principle: do not repeat yourself. -(share of word bigrams seen before), in [-1, 0]."""

    name, range = "repetition", (-1.0, 0.0)

    def score(self, prompts, completions) -> np.ndarray:
        out = []
        for c in completions:
            w = c.split()
            grams = list(zip(w, w[1:]))
            out.append(-(len(grams) - len(set(grams))) / len(grams) if grams else 0.0)
        return np.asarray(out, dtype=np.float32)


class VarietyCritic:
    """Principle: say something new -- to yourself and to the batch (book 5.3; the rule that
    keeps RL from collapsing onto the judge's favourite phrase, Kirk et al. 2023).

    score = -(share of content words used before in the completion) - [a sentence repeats]
            - (1 - novelty), novelty = mean over the completion's bigrams of 1 / (how many
    completions of the batch contain that bigram): 1 when no other completion says the same.
    In [-3, 0]; the batch is the ``completions`` scored together (the RL rollout). The
    principle is for open-ended writing (``tasks``: reviews): a summary, an answer or a
    helpful reply should say what the task asks, however often it was said before, so
    completions of other tasks score 0 and do not count in the batch.
    """

    name, range = "variety", (-3.0, 0.0)

    def __init__(self, tasks: Sequence[str] = ("reviews",)):
        self.tasks = frozenset(tasks)

    def score(self, prompts, completions) -> np.ndarray:
        out = np.zeros(len(completions), dtype=np.float32)
        rows = [i for i, p in enumerate(prompts) if grammar.task_of(p) in self.tasks]
        if rows:
            out[rows] = self._score([completions[i] for i in rows])
        return out

    def _score(self, completions) -> np.ndarray:
        words = [c.split() for c in completions]
        grams = [set(zip(w, w[1:])) for w in words]
        count: dict = {}
        for g in grams:
            for x in g:
                count[x] = count.get(x, 0) + 1
        out = []
        for w, g in zip(words, grams):
            content = [x for x in w if x in CONTENT_WORDS]
            repeated = (len(content) - len(set(content))) / len(content) if content else 0.0
            s = sentences(w)
            novelty = float(np.mean([1.0 / count[x] for x in g])) if g else 0.0
            out.append(-repeated - float(len(s) != len(set(s))) - (1.0 - novelty))
        return np.asarray(out, dtype=np.float32)


class HarmCritic:
    """The constitution of the dialogue task (``tasks.dialogue.CONSTITUTION``: do not insult,
    do not dismiss the user), as Constitutional AI's critic: -(principles a reply breaks), in
    [-2, 0]; completions of other tasks score 0. Its flag rate is the RLAIF paper's harm rate."""

    name, range = "harm", (-2.0, 0.0)

    def score(self, prompts, completions) -> np.ndarray:
        return np.asarray([-float(len(dialogue.broken_principles(c)))
                           if grammar.task_of(p) == "dialogue" else 0.0
                           for p, c in zip(prompts, completions)], dtype=np.float32)


class GroundingCritic:
    """Principle: say only what the source says, and say it once (the grounded tasks'
    constitution). A summary scores -(share of the aspects it names that its document never
    mentions or that it named before), an answer -1 if its entity is none of the facts'; other
    tasks 0. It checks presence only -- whether an aspect was liked, or the answer is the right
    one, is for the judge to see. In [-1, 0]."""

    name, range = "grounding", (-1.0, 0.0)

    def score(self, prompts, completions) -> np.ndarray:
        out = []
        for p, c in zip(prompts, completions):
            task, s = grammar.task_of(p), 0.0
            if task == "summary":
                words = set(p.split())
                named = [w for w in c.split() if w in self.NOUNS]
                bad = sum(w not in words or w in named[:i] for i, w in enumerate(named))
                s = -bad / len(named) if named else 0.0
            elif task == "kgqa":
                e = kgqa.answer_entity(c)
                s = 0.0 if e is not None and e in p.split()[: p.split().index("question")] \
                    else -1.0
            out.append(s)
        return np.asarray(out, dtype=np.float32)

    NOUNS = frozenset(grammar.WORDS["MNOUN"] + grammar.WORDS["PNOUN"])


class LengthCritic:
    """Principle: say about ``target`` words. -|words - target| / target, clipped to [-1, 0]."""

    name, range = "length", (-1.0, 0.0)

    def __init__(self, target: int = 12):
        if target < 1:
            raise ValueError("target must be >= 1")
        self.target = target

    def score(self, prompts, completions) -> np.ndarray:
        return np.asarray([max(-1.0, -abs(len(c.split()) - self.target) / self.target)
                           for c in completions], dtype=np.float32)


class BannedWordsCritic:
    """Principle: never use these words. -(number of banned words), in (-inf, 0]."""

    name, range = "banned_words", (-math.inf, 0.0)

    def __init__(self, banned: Sequence[str] = ("stupid", "annoying", "whatever")):
        self.banned = frozenset(banned)

    def score(self, prompts, completions) -> np.ndarray:
        return np.asarray([-sum(w in self.banned for w in c.split()) for c in completions],
                          dtype=np.float32)


class GrammarCritic:
    """Principle: write the language's sentences. 0 if well-formed, else -1. It checks the
    form only (``grammar.is_well_formed``): whether a summary is faithful or an answer correct
    is what the learnt judges must see, never a rule that knows the truth."""

    name, range = "grammar", (-1.0, 0.0)

    def score(self, prompts, completions) -> np.ndarray:
        return np.asarray([0.0 if grammar.is_well_formed(join(p, c)) else -1.0
                           for p, c in zip(prompts, completions)], dtype=np.float32)


def constitution(length_target: int = 12) -> list:
    """The default rule critics."""
    return [RepetitionCritic(), LengthCritic(length_target), BannedWordsCritic(), GrammarCritic()]


# --- saving the encoder judges ------------------------------------------------------------------
def save_encoder(path, encoder: TextEncoder) -> None:
    """``path/encoder.safetensors`` + ``path/encoder.json`` (config and the weights' SHA-256),
    each written atomically."""
    import hashlib
    from pathlib import Path

    from safetensors.torch import save

    from .io import atomic_write_bytes, atomic_write_json

    path = Path(path)
    blob = save({k: v.contiguous() for k, v in encoder.state_dict().items()})
    atomic_write_bytes(path / "encoder.safetensors", blob)
    atomic_write_json(path / "encoder.json", {
        "config": asdict(encoder.cfg), "vocab_size": encoder.tok.num_embeddings,
        "n_out": encoder.head.out_features,
        "sha256": {"encoder.safetensors": hashlib.sha256(blob).hexdigest()}})


def load_encoder(path) -> TextEncoder:
    """The encoder saved by :func:`save_encoder`, checked as ``checkpoint.load_checkpoint``
    checks a GPT: recorded hash (if any), shapes against the config before anything is
    allocated, finite weights. Raises :class:`CheckpointError` saying what is wrong."""
    from pathlib import Path

    from safetensors.torch import load_file

    from .checkpoint import check_finite, check_hashes, check_weights_fit, config_from_json
    from .io import CheckpointError, read_json

    path = Path(path)
    where = f"{path}/encoder.json"
    meta = read_json(path / "encoder.json", "encoder config")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where} is not a JSON object (it holds a {type(meta).__name__}); "
                              "restore it or train the judge again")
    cfg = config_from_json(EncoderConfig, meta.get("config"), f"{where} 'config' section")
    sizes = {"vocab_size": meta.get("vocab_size"), "n_out": meta.get("n_out"),
             "d_model": cfg.d_model, "nhead": cfg.nhead, "max_len": cfg.max_len}
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CheckpointError(f"{where}: {name} must be a positive integer, not {v!r}")
    if cfg.num_layers < 0:
        raise CheckpointError(f"{where}: num_layers must be >= 0, not {cfg.num_layers}")
    if cfg.d_model % cfg.nhead:
        raise CheckpointError(f"{where}: d_model ({cfg.d_model}) must be divisible by nhead "
                              f"({cfg.nhead})")
    weights = path / "encoder.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; train the judge again")
    check_hashes(path, meta, ["encoder.safetensors"], where)
    check_weights_fit(weights, where, cfg.num_layers, "layers.",
                      lambda: TextEncoder(meta["vocab_size"], cfg, meta["n_out"]))
    enc = TextEncoder(meta["vocab_size"], cfg, meta["n_out"])
    try:
        enc.load_state_dict(load_file(weights))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"encoder weights {weights} are corrupt or do not fit: {e}")\
            from None
    check_finite(enc, weights)
    return enc.eval()
