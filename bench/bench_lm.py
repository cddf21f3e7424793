"""Benchmark of the Torch LM at the reference size (n_layer=4, n_head=4, n_embd=128, block 128).

Prints, in one run:
  * training tokens/s (forward + backward + AdamW step), batch 32 x 128 tokens;
  * generation tokens/s at batch 64, 128 new tokens, with and without the KV cache;
  * the same for Hugging Face ``transformers`` GPT-2 of the same size, when the ``bench`` extra
    is installed (``pip install -e '.[bench]'``): its cached ``generate`` is the anchor.

Figures, not pass/fail. Run: ``make bench`` or ``python bench/bench_lm.py [--threads N]``.
Generation uses a context of 256 positions for both models so that 128 new tokens fit after the
prompt; the model is otherwise the reference size.
"""

from __future__ import annotations

import argparse
import time

import torch

from lm_torch.model import GPT, GPTConfig
from lm_torch.sample import SampleConfig, generate
from lm_torch.train import TrainConfig, make_optimizer

REF = dict(n_layer=4, n_head=4, n_embd=128, vocab_size=512, dropout=0.0)


def bench_train(steps: int, batch: int = 32, block: int = 128) -> float:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=block, **REF))
    opt = make_optimizer(model, TrainConfig())
    x = torch.randint(0, 512, (batch, block + 1))
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            t0 = time.perf_counter()
        loss = model(x[:, :-1], x[:, 1:]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch * block / (time.perf_counter() - t0)


def bench_ours(use_cache: bool, batch: int, new: int) -> float:
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=256, **REF)).eval()
    cfg = SampleConfig(max_new_tokens=new, use_cache=use_cache)
    prompts = [[1]] * batch
    generate(model, prompts, SampleConfig(max_new_tokens=4), eos_id=-1, seed=0)  # warm up
    t0 = time.perf_counter()
    outs = generate(model, prompts, cfg, eos_id=-1, seed=0)  # eos -1: never stop early
    n = sum(len(o) for o in outs)
    return n / (time.perf_counter() - t0)


def bench_hf(use_cache: bool, batch: int, new: int) -> float | None:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=512, n_positions=256, n_embd=128, n_layer=4, n_head=4,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1,
                     eos_token_id=2, pad_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.ones(batch, 1, dtype=torch.long)
    kw = dict(do_sample=True, min_new_tokens=new, max_new_tokens=new, use_cache=use_cache,
              attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        model.generate(ids, **{**kw, "min_new_tokens": 4, "max_new_tokens": 4})
        t0 = time.perf_counter()
        out = model.generate(ids, **kw)
    return (out.shape[1] - 1) * batch / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=128)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = GPT(GPTConfig(**REF)).num_params()
    print(f"reference model: {n / 1e6:.2f} M parameters, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"training:   {bench_train(args.train_steps):9.0f} tokens/s  (batch 32 x 128; "
          "nanoGPT's model.py: ~20 k here)")
    b, new = args.batch, args.new_tokens
    rows = [("rlaif-lab GPT, KV cache", bench_ours(True, b, new)),
            ("rlaif-lab GPT, no cache", bench_ours(False, b, new))]
    hf_c, hf_n = bench_hf(True, b, new), bench_hf(False, b, new)
    if hf_c is not None:
        rows += [("HF GPT-2, KV cache", hf_c), ("HF GPT-2, no cache", hf_n)]
    else:
        rows.append(("HF GPT-2", None))
    print(f"generation at batch {b}, {new} new tokens:")
    for name, v in rows:
        print(f"  {name:26s} " + (f"{v:9.0f} tokens/s" if v else
                                  "  (not installed: pip install -e '.[bench]')"))
    if hf_c:
        print(f"  cached speed-up over HF GPT-2 with cache: {rows[0][1] / hf_c:.2f}x")


if __name__ == "__main__":
    main()
