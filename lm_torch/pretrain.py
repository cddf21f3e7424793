"""Pre-training on the built-in corpus, end to end (book 2.1.3, 4.1.3; experiment of 5.3.1).

corpus -> tokenizer -> packed token stream -> GPT -> train -> checkpoint -> evaluation:
validation perplexity beside a unigram model's, and the share of samples (temperature 1.0) that
the grammar accepts. Everything is written into one run directory::

    OUT/config.json      the exact PretrainConfig
    OUT/checkpoint/      weights + config + tokenizer (+ optimizer), see lm_torch.checkpoint
    OUT/tb/              TensorBoard scalars
    OUT/metrics.json     the headline figures
    OUT/samples.txt      the evaluation samples, each marked ok / BAD
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch

from bridge.config import check_config
from bridge.files import jsonable, open_run_dir

from . import grammar
from .checkpoint import Checkpoint, load_checkpoint
from .corpus import CorpusConfig, build_corpus
from .data import PackedLMData, SFTData, encode_stream, unigram_perplexity
from .io import atomic_write_json, atomic_write_text, printable
from .model import GPT, GPTConfig
from .sample import SampleConfig, generate
from .tokenizer import Tokenizer, train_tokenizer
from .train import TrainConfig, TrainResult, seed_everything, train


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pre-training run depends on (written to OUT/config.json)."""

    seed: int = field(default=0, metadata={"help": "seeds Python, NumPy and torch"})
    tokenizer: Literal["bpe", "char"] = field(default="bpe", metadata={"help": "tokenizer kind"})
    vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary size"})
    n_eval_samples: int = field(default=200, metadata={"help": "samples for well-formedness"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = all cores)"})
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: GPTConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        check_config(self, positive=("n_eval_samples",))
        if self.threads < 0:
            raise ValueError("PretrainConfig.threads must be >= 0 (0 = all cores)")
        if self.vocab_size < 260:
            raise ValueError("vocab_size must be >= 260 (256 bytes + specials) for BPE")


def well_formed_rate(model: GPT, tokenizer: Tokenizer, n: int, seed: int = 0,
                     temperature: float = 1.0, batch_size: int = 100) -> tuple[float, list[str]]:
    """Share of ``n`` unconditional samples (from ``<bos>``) that the grammar accepts."""
    texts: list[str] = []
    for i in range(0, n, batch_size):
        b = min(batch_size, n - i)
        outs = generate(model, [[tokenizer.bos_id]] * b,
                        SampleConfig(max_new_tokens=model.config.block_size - 1,
                                     temperature=temperature),
                        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, seed=seed + i)
        texts.extend(tokenizer.decode(o) for o in outs)
    ok = sum(grammar.is_well_formed(t) for t in texts)
    return ok / max(n, 1), texts


def sft_data(corpus_records, tokenizer, block_size, batch_size, seed) -> SFTData:
    """Prompt -> completion pairs of the corpus (book 2.1.3: fine-tuning)."""
    pairs = [(r.prompt, r.completion) for r in corpus_records]
    return SFTData(tokenizer, pairs, block_size, batch_size, seed)


def run_pretrain(cfg: PretrainConfig, out_dir: str | os.PathLike, resume: bool = False,
                 progress: bool = True, device: str | torch.device = "cpu") -> dict:
    """Pre-train on ``device`` (``lm_torch.device.resolve_device``), evaluate and write the run
    directory; returns the metrics dict."""
    out = Path(out_dir)
    open_run_dir(out, jsonable(cfg), resume=resume, what="pre-training run")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    t0 = time.time()
    corpus = build_corpus(cfg.corpus)
    tok = train_tokenizer(cfg.tokenizer, corpus.texts(), cfg.vocab_size)
    mcfg = GPTConfig(**{**asdict(cfg.model), "vocab_size": tok.vocab_size})
    # the LM learns from what was written to be read, not from the judges' negative examples
    train_stream = encode_stream(tok, corpus.texts("train", demonstrations=True))
    val_stream = encode_stream(tok, corpus.texts("val", demonstrations=True))
    data = PackedLMData(train_stream, mcfg.block_size, cfg.train.batch_size, cfg.seed)
    val = PackedLMData(val_stream, mcfg.block_size, cfg.train.batch_size, cfg.seed)
    model = GPT(mcfg).to(device)
    result: TrainResult = train(model, tok, data, cfg.train, val=val, out_dir=out, seed=cfg.seed,
                                resume=resume, progress=progress, log_prefix="pretrain",
                                meta={"stage": "pretrain"})
    train_s = time.time() - t0
    ck = load_checkpoint(out / "checkpoint", map_location=str(torch.device(device)))
    metrics = evaluate_checkpoint(ck, cfg, val, train_stream, val_stream)
    metrics.update({"train_seconds": round(train_s, 1), "steps": cfg.train.max_steps,
                    "final_train_loss": result.losses[-1] if result.losses else None,
                    "tokens_per_second": round(result.steps_run * cfg.train.batch_size
                                               * mcfg.block_size / max(train_s, 1e-9))})
    texts = metrics.pop("_samples")
    atomic_write_text(out / "samples.txt", "".join(
        f"{'ok ' if grammar.is_well_formed(t) else 'BAD'} {printable(t)}\n" for t in texts))
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def evaluate_checkpoint(ck: Checkpoint, cfg: PretrainConfig, val: PackedLMData,
                        train_stream, val_stream) -> dict:
    from .train import evaluate

    ev = evaluate(ck.model, val.eval_batches(cfg.train.eval_batches))
    rate, texts = well_formed_rate(ck.model, ck.tokenizer, cfg.n_eval_samples, seed=cfg.seed)
    return {
        "val_loss": ev["loss"], "val_perplexity": ev["perplexity"],
        "unigram_val_perplexity": unigram_perplexity(train_stream, val_stream,
                                                     ck.tokenizer.vocab_size),
        "well_formed_rate": rate, "n_samples": len(texts),
        "n_params": ck.model.num_params(), "_samples": texts,
    }


#: The small LM behind ``rlaif/TextGeneration-v0`` when no checkpoint is given (about 50 s).
BUILTIN = PretrainConfig(
    seed=0, n_eval_samples=200, corpus=CorpusConfig(n_train=6000, n_val=200, n_prompts=50),
    model=GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=128),
    train=TrainConfig(max_steps=700, batch_size=16, lr=4e-3, warmup_steps=20,
                      eval_interval=50, ckpt_interval=700))


def builtin_checkpoint(cache_dir: str | os.PathLike | None = None,
                       progress: bool = False) -> Path:
    """The built-in checkpoint, trained once and cached (``$RLAIF_LAB_CACHE`` or
    ``~/.cache/rlaif-lab``); the same seed always gives the same weights. ``progress`` shows a
    progress bar while it trains (the first call only)."""
    root = Path(cache_dir or os.environ.get("RLAIF_LAB_CACHE")
                or Path.home() / ".cache" / "rlaif-lab")
    final = root / "builtin-v3"  # v3: multi-turn dialogues, a context of 128 tokens, 700 steps
    if not (final / "checkpoint" / "model.safetensors").is_file():
        root.mkdir(parents=True, exist_ok=True)
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix=".builtin-", dir=root))
        try:
            run_pretrain(BUILTIN, tmp, progress=progress)
            if not final.exists():
                os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final / "checkpoint"
