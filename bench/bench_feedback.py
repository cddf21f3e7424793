"""AI-feedback experiments (book 4.3, 5.3.3): judge, labeler biases, reward model under noise.

Prints:
  1. the classifier judge's accuracy on held-out corpus records;
  2. the labeler's agreement with gold and its first-position share: unbiased, with an injected
     position bias, and with that bias under swap-averaging;
  3. reward-model preference accuracy against gold at label flip rates 0, 0.1, 0.2, 0.3, with
     the plain and the noise-robust Bradley-Terry loss;
  4. fused-feedback error with uniform vs inverse-variance weights on synthetic sources.

Figures only. Run: ``python bench/bench_feedback.py`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from lm_torch.checkpoint import load_checkpoint
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.judges import EncoderConfig, join, train_classifier_judge
from lm_torch.labeler import AILabeler, LabelerConfig, sample_pairs
from lm_torch.pretrain import builtin_checkpoint
from lm_torch.reward_model import RewardModelConfig, preference_accuracy, train_reward_model
from lm_torch.tasks import gold_score
from rl_tf.feedback import FeedbackFuser, FusionConfig


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=6000, help="sampled training pairs")
    p.add_argument("--table-pairs", type=int, default=1500,
                   help="pairs for the flip-rate table (few pairs, many epochs: the regime "
                   "where flipped labels are memorised)")
    p.add_argument("--rm-steps", type=int, default=600)
    args = p.parse_args(argv)
    cache = os.environ.get("RLAIF_LAB_CACHE") or tempfile.mkdtemp()
    lm = load_checkpoint(builtin_checkpoint(cache))
    corpus = build_corpus(CorpusConfig(n_train=6000, n_val=1000, n_prompts=400))
    judge = train_classifier_judge(corpus.train, lm.tokenizer, EncoderConfig(steps=400))
    print(f"1. classifier judge accuracy on {len(corpus.val)} held-out records: "
          f"{judge.accuracy(corpus.val):.3f}  (must show >= 0.95)")

    rng = np.random.default_rng(0)
    prompts = [corpus.train[i].prompt for i in rng.integers(0, len(corpus.train), args.pairs)]
    P, A, B = sample_pairs(lm.model, lm.tokenizer, prompts, seed=1, max_new_tokens=40)
    Pv, Av, Bv = sample_pairs(lm.model, lm.tokenizer, [r.prompt for r in corpus.prompts],
                              seed=2, max_new_tokens=40)

    def gold(PP, CC):
        return np.array([gold_score(join(a, b)) for a, b in zip(PP, CC)])

    ga, gb, gva, gvb = gold(P, A), gold(P, B), gold(Pv, Av), gold(Pv, Bv)
    print("\n2. AI labeler on sampled pairs (agreement with gold; share decided for the first "
          "shown):")
    for label, kw in (("unbiased, one order", dict(swap=False)),
                      ("position bias 2.0, one order", dict(swap=False, position_bias=2.0)),
                      ("position bias 2.0, both orders", dict(swap=True, position_bias=2.0)),
                      ("unbiased, both orders", dict(swap=True))):
        rep = AILabeler.report(AILabeler(judge.score, LabelerConfig(**kw)).label(P, A, B),
                               ga, gb)
        print(f"   {label:32s} agreement {rep['gold_agreement']:.3f}   first-position share "
              f"{rep['first_position_share']:.3f}")

    enc = EncoderConfig(steps=args.rm_steps, batch_size=32, lr=2e-3)
    clean = AILabeler(judge.score).label(P, A, B)
    rm = train_reward_model(lm.tokenizer, P, A, B, clean, RewardModelConfig(encoder=enc))
    print(f"\n3. reward model on clean AI labels, {len(P)} pairs: preference accuracy against "
          f"gold on {len(Pv)} held-out pairs {preference_accuracy(rm, Pv, Av, Bv, gva, gvb):.3f}"
          "  (must show >= 0.90)")
    n = args.table_pairs
    print(f"   by label flip rate, {n} training pairs, {args.rm_steps} steps of 32:")
    print("   flip rate | plain BT | robust BT (eps = flip rate, at least 0.05)")
    for flip in (0.0, 0.1, 0.2, 0.3):
        labels = AILabeler(judge.score, LabelerConfig(flip_rate=flip)).label(P[:n], A[:n], B[:n])
        accs = []
        for robust in (False, True):
            cfg = RewardModelConfig(encoder=enc, robust=robust, assumed_flip_rate=max(flip, 0.05))
            rm = train_reward_model(lm.tokenizer, P[:n], A[:n], B[:n], labels, cfg)
            accs.append(preference_accuracy(rm, Pv, Av, Bv, gva, gvb))
        print(f"   {flip:9.1f} | {accs[0]:8.3f} | {accs[1]:9.3f}")

    print("\n4. fusion of 4 synthetic sources (noise sigma 0.2, 0.5, 1, 2) of one signal:")
    sig = np.array([0.2, 0.5, 1.0, 2.0])
    for mode in ("fixed", "inverse_variance"):
        fuser = FeedbackFuser("abcd", FusionConfig(weights=mode, normalize=False, clip=0.0))
        r = np.random.default_rng(0)
        errs = []
        for _ in range(40):
            s = r.normal(size=64)
            f = (s[:, None] + r.normal(size=(64, 4)) * sig).astype(np.float32)
            errs.append(np.mean((fuser(f, tuple("abcd")).fused - s) ** 2))
        print(f"   {mode:17s} MSE to the true signal {np.mean(errs[10:]):.3f}; weights "
              f"{np.round(fuser.weights, 3).tolist()}")


if __name__ == "__main__":
    main()
