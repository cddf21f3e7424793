"""One RLAIF run, stage by stage (book 3.1.1's algorithm flow; DESIGN.md "One RLAIF run").

pretrain -> sft -> judges -> labels -> reward_model -> rl -> evaluate -> report. Each stage
writes its artefacts under ``OUT/<stage>/`` and a ``done.json`` last; a stage whose
``done.json`` exists is not redone. The RL stage checkpoints every ``ckpt_interval`` iterations
and resumes from there; each iteration's randomness is a function of (seed, iteration), so a
resumed run ends with the same numbers as an uninterrupted one. This is the wiring: the only
module besides the CLI that imports both frameworks.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from lm_torch import judges as J
from lm_torch.checkpoint import load_checkpoint
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.data import SFTData
from lm_torch.io import CheckpointError, atomic_write_bytes, atomic_write_json, read_json
from lm_torch.labeler import AILabeler, LabelerConfig, sample_pairs
from lm_torch.model import GPTConfig
from lm_torch.pretrain import PretrainConfig, run_pretrain
from lm_torch.reward_model import (
    RewardModel,
    RewardModelConfig,
    make_reward_fn,
    train_reward_model,
)
from lm_torch.train import TrainConfig, seed_everything, train
from rl_tf.feedback import FeedbackFuser, FusionConfig
from rl_tf.logger import seed_everything as seed_tf
from rl_tf.rl_config import RLConfig

from .env import BatchedTextEnv
from .npz import read_npz, write_npz
from .presets import RunConfig

STAGES = ("pretrain", "sft", "judges", "labels", "reward_model", "rl", "evaluate", "report")


class RunError(Exception):
    """A run directory that cannot be used as asked (another run's artefacts, a bad config)."""


def _jsonable(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


class Run:
    """A run directory and its config; ``run.stage(name)`` runs one stage unless it is done."""

    def __init__(self, cfg: RunConfig, out: str | Path, progress: bool = True,
                 log: Callable[[str], None] = print):
        self.cfg, self.out, self.progress, self.log = cfg, Path(out), progress, log
        saved = self.out / "config.json"
        if saved.exists():
            old = read_json(saved, "run config")
            if old != _jsonable(cfg):
                raise RunError(f"{self.out} holds a run with another config; use --resume with "
                               "the same config, or choose another --out (nothing was changed)")
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(saved, _jsonable(cfg))
        self.corpus = build_corpus(CorpusConfig(seed=cfg.seed, n_train=cfg.lm.n_train,
                                                n_val=500, n_prompts=cfg.eval.n_prompts))

    def use_pretrained(self, run_dir: str | Path) -> None:
        """Take the pretrain stage from another run directory (e.g. the built-in LM's) instead
        of training it: its checkpoint becomes ``OUT/pretrain``, marked done."""
        import shutil

        src = Path(run_dir)
        if not (src / "checkpoint").is_dir():
            raise RunError(f"{src} has no checkpoint/ to take as the pretrained LM")
        if not self.done("pretrain"):
            shutil.copytree(src, self.out / "pretrain", dirs_exist_ok=True)
            atomic_write_json(self.out / "pretrain" / "done.json", {"taken_from": str(src)})

    def done(self, stage: str) -> bool:
        return (self.out / stage / "done.json").is_file()

    def stage(self, name: str) -> None:
        if self.done(name):
            self.log(f"[{name}] done already (kept)")
            return
        t0 = time.time()
        self.log(f"[{name}] ...")
        seed_everything(self.cfg.seed)
        seed_tf(self.cfg.seed)
        info = getattr(self, f"_{name}")() or {}
        atomic_write_json(self.out / name / "done.json",
                          {"seconds": round(time.time() - t0, 1), **info})
        self.log(f"[{name}] finished in {time.time() - t0:.0f} s")

    def run_all(self) -> dict:
        for s in STAGES:
            self.stage(s)
        return read_json(self.out / "summary.json", "summary")

    # --- language model --------------------------------------------------------------------
    def _pretrain(self):
        lm = self.cfg.lm
        pcfg = PretrainConfig(
            seed=self.cfg.seed, n_eval_samples=100,
            corpus=CorpusConfig(seed=self.cfg.seed, n_train=lm.n_train, n_val=500,
                                n_prompts=self.cfg.eval.n_prompts),
            model=GPTConfig(n_layer=lm.n_layer, n_head=lm.n_head, n_embd=lm.n_embd,
                            block_size=lm.block_size),
            train=TrainConfig(max_steps=lm.pretrain_steps, lr=lm.lr, warmup_steps=20,
                              eval_interval=100, ckpt_interval=100))
        return run_pretrain(pcfg, self.out / "pretrain", resume=True, progress=self.progress)

    def _sft(self):
        ck = load_checkpoint(self.out / "pretrain" / "checkpoint")
        pairs = [(r.prompt, r.completion) for r in self.corpus.train]
        data = SFTData(ck.tokenizer, pairs, ck.model.config.block_size, 32, self.cfg.seed)
        val = SFTData(ck.tokenizer, [(r.prompt, r.completion) for r in self.corpus.val],
                      ck.model.config.block_size, 32, self.cfg.seed)
        tc = TrainConfig(max_steps=self.cfg.lm.sft_steps, lr=self.cfg.lm.lr / 3,
                         warmup_steps=10, eval_interval=50, ckpt_interval=50, eval_batches=4)
        res = train(ck.model, ck.tokenizer, data, tc, val=val, out_dir=self.out / "sft",
                    seed=self.cfg.seed, resume=True, progress=self.progress, log_prefix="sft",
                    meta={"stage": "sft"})
        return {"val": res.evals[-1] if res.evals else None}

    def sft(self):
        return load_checkpoint(self.out / "sft" / "checkpoint")

    # --- AI feedback -----------------------------------------------------------------------
    def _judges(self):
        tok = self.sft().tokenizer
        judge = J.train_classifier_judge(self.corpus.train, tok, J.EncoderConfig(
            steps=self.cfg.feedback.judge_steps, seed=self.cfg.seed))
        J.save_encoder(self.out / "judges" / "classifier", judge.encoder)
        return {"classifier_accuracy": judge.accuracy(self.corpus.val)}

    def judge(self) -> J.ClassifierJudge:
        return J.ClassifierJudge(J.load_encoder(self.out / "judges" / "classifier"),
                                 self.sft().tokenizer)

    def _labels(self):
        fb, sft = self.cfg.feedback, self.sft()
        rng = np.random.default_rng([self.cfg.seed, 1])
        prompts = [self.corpus.train[i].prompt
                   for i in rng.integers(0, len(self.corpus.train), fb.n_pairs)]
        P, A, B = sample_pairs(sft.model, sft.tokenizer, prompts, seed=self.cfg.seed,
                               max_new_tokens=self.cfg.rl.max_new_tokens)
        labeler = AILabeler(self.judge().score, LabelerConfig(
            swap=fb.swap, flip_rate=fb.flip_rate, position_bias=fb.position_bias,
            noise_sigma=fb.noise_sigma, seed=self.cfg.seed))
        labels = labeler.label(P, A, B)
        from lm_torch.grammar import gold_score

        ga = np.array([gold_score(J.join(p, c)) for p, c in zip(P, A)])
        gb = np.array([gold_score(J.join(p, c)) for p, c in zip(P, B)])
        report = AILabeler.report(labels, ga, gb)
        atomic_write_json(self.out / "labels" / "pairs.json",
                          {"prompts": P, "a": A, "b": B, "labels": labels.tolist()})
        return report

    def _reward_model(self):
        fb = self.cfg.feedback
        d = read_json(self.out / "labels" / "pairs.json", "AI labels")
        cfg = RewardModelConfig(encoder=J.EncoderConfig(steps=fb.rm_steps, batch_size=32,
                                                        lr=2e-3, seed=self.cfg.seed),
                                robust=fb.robust_rm, assumed_flip_rate=max(fb.flip_rate, 0.05))
        rm = train_reward_model(self.sft().tokenizer, d["prompts"], d["a"], d["b"],
                                np.array(d["labels"], np.float32), cfg)
        J.save_encoder(self.out / "reward_model", rm.encoder)

    def reward_sources(self) -> dict[str, Callable]:
        """The feedback sources of the RL stage: the AI reward and two rule critics."""
        fb = self.cfg.feedback
        rm = None
        if fb.reward == "rm":
            rm = RewardModel(J.load_encoder(self.out / "reward_model"), self.sft().tokenizer)
        reward = make_reward_fn(fb.reward, self.judge(), rm)
        return {"reward": reward, "grammar": J.GrammarCritic().score,
                "repetition": J.RepetitionCritic().score}

    def fuser(self) -> FeedbackFuser:
        fb = self.cfg.feedback
        weights = (1.0, fb.grammar_weight, fb.repetition_weight)
        cfg = FusionConfig(weights=fb.fusion, fixed_weights=weights if fb.fusion == "fixed"
                           else (), normalize=fb.fusion != "fixed", clip=20.0)
        return FeedbackFuser(("reward", "grammar", "repetition"), cfg)

    # --- RL ----------------------------------------------------------------------------------
    def rl_config(self) -> RLConfig:
        return self.cfg.rl

    def env(self, batch_size: int) -> BatchedTextEnv:
        from lm_torch.backend import LMBackend

        sft = self.sft()
        backend = LMBackend(sft.model, sft.tokenizer, max_new_tokens=self.cfg.rl.max_new_tokens)
        prompts = [r.prompt for r in self.corpus.train]
        return BatchedTextEnv(backend, prompts=prompts, batch_size=batch_size,
                              reward_fn=lambda p, c: np.zeros(len(p), np.float32))

    def _rl(self):
        from .rl_stage import train_rl

        return train_rl(self)

    def _evaluate(self):
        from .evaluate import evaluate_run

        return evaluate_run(self)

    def _report(self):
        from .report import write_report

        write_report(self)


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write_bytes(path, write_npz(arrays))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        return {k: np.array(v) for k, v in read_npz(path.read_bytes()).items()}
    except ValueError as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from None
