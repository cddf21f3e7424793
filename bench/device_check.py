"""Does the PyTorch side run on this device? A few steps of each part, timed (figures only).

Run it where a GPU is lent: ``python bench/device_check.py --device cuda`` (``auto`` picks CUDA
when one is visible). For each part it runs a few steps on the device and the same steps on the
CPU from the same seed, and prints the device's throughput beside the CPU's and the largest
difference between the two results (float rounding only: a few 1e-4 at most is expected):

* LM training (``lm_torch.train.train``, the reference size, batch 32 x 128);
* generation with the KV cache (``lm_torch.sample.generate``, batch 64);
* the classifier judge and the reward model (``train_classifier_judge``,
  ``train_reward_model``), a few steps each, and their scores;
* the RL environment over the LM backend on the device, driven by the Keras policy (TensorFlow
  places the policy itself).

Exit code 0 when every part ran and matched the CPU within tolerance, 1 otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import copy  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lm_torch.corpus import CorpusConfig, build_corpus  # noqa: E402
from lm_torch.data import PackedLMData, encode_stream  # noqa: E402
from lm_torch.device import resolve_device  # noqa: E402
from lm_torch.judges import EncoderConfig, train_classifier_judge  # noqa: E402
from lm_torch.model import GPT, GPTConfig  # noqa: E402
from lm_torch.reward_model import RewardModelConfig, train_reward_model  # noqa: E402
from lm_torch.sample import SampleConfig, generate  # noqa: E402
from lm_torch.tokenizer import train_tokenizer  # noqa: E402
from lm_torch.train import TrainConfig, train  # noqa: E402


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--steps", type=int, default=20, help="training steps per part")
    p.add_argument("--tol", type=float, default=5e-3, help="largest accepted difference")
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}); "
          f"torch {torch.__version__}")
    corpus = build_corpus(CorpusConfig(n_train=2000, n_val=100, n_prompts=64))
    tok = train_tokenizer("bpe", corpus.texts(), 512)
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=128))
    data = PackedLMData(encode_stream(tok, corpus.texts("train")), 128, 32, 0)
    cfg = TrainConfig(max_steps=args.steps, batch_size=32, eval_interval=10 ** 9,
                      ckpt_interval=10 ** 9)
    ok = True

    def part(name, run, measure, unit):
        nonlocal ok
        run(dev)  # warm up (CUDA context, kernels, the allocator)
        (res_d, s_d), (res_c, s_c) = timed(lambda: run(dev)), timed(lambda: run("cpu"))
        diff = float(np.max(np.abs(np.asarray(res_d) - np.asarray(res_c))))
        good = np.isfinite(res_d).all() and diff <= args.tol
        ok &= bool(good)
        print(f"  {name:26s} {measure / s_d:9.0f} {unit} on {dev} vs {measure / s_c:9.0f} on the "
              f"CPU; largest difference {diff:.1e} {'ok' if good else 'MISMATCH'}", flush=True)

    def lm_train(d):
        m = copy.deepcopy(base).to(d)
        return train(m, tok, data, cfg, progress=False).losses
    part("LM training", lm_train, args.steps * 32 * 128, "tokens/s")

    def lm_generate(d):
        m = copy.deepcopy(base).to(d)
        outs = generate(m, [[tok.bos_id]] * 64, SampleConfig(max_new_tokens=64, temperature=1e-4),
                        eos_id=-1, seed=0)
        return np.array(outs, dtype=np.float64)  # near-greedy: the same tokens on both
    part("generation, KV cache", lm_generate, 64 * 64, "tokens/s")

    ecfg = EncoderConfig(steps=args.steps, batch_size=32)
    recs = corpus.val[:64]

    def judge(d):
        j = train_classifier_judge(corpus.train, tok, ecfg, device=d)
        return j.score([r.prompt for r in recs], [r.completion for r in recs])
    part("classifier judge", judge, args.steps * 32, "texts/s")

    P = [r.prompt for r in corpus.train[:256]]
    A = [r.completion for r in corpus.train[:256]]
    B = [r.completion for r in corpus.train[256:512]]

    def reward_model(d):
        rm = train_reward_model(tok, P, A, B, np.full(256, 0.7, np.float32),
                                RewardModelConfig(encoder=ecfg), device=d)
        return rm.score(P[:64], A[:64])
    part("reward model", reward_model, args.steps * 64, "texts/s")

    from bridge.env import BatchedTextEnv
    from lm_torch.backend import LMBackend
    from rl_tf.rl_config import RLConfig
    from rl_tf.rlaif import ResidualPolicy

    def rollout(d):
        m = copy.deepcopy(base)
        env = BatchedTextEnv(LMBackend(m, tok, max_new_tokens=32, device=d), tok,
                             [r.prompt for r in corpus.prompts], batch_size=64)
        policy = ResidualPolicy(tok.vocab_size, m.config.n_embd, RLConfig(), 0)
        s, last = env.reset(seed=0), None
        while not s.done.all():
            last = s.logits.copy()
            s, _, _, _ = env.step(policy.act(s.hidden, s.logits).argmax(-1).astype(np.int32))
        return last  # the reference logits of the last step: the same on both devices
    part("RL env + Keras policy (greedy)", rollout, 64 * 32, "tokens/s")
    print("all parts ran and matched the CPU" if ok else "some part failed: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
