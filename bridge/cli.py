"""The ``rlaif-lab`` command line.

Subcommands import their framework lazily, so ``rlaif-lab pretrain`` never loads TensorFlow and
``rlaif-lab cartpole`` never loads torch. Bad input exits with code 2 and a message that says
what to fix; nothing of an existing run is overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .cli_config import add_config_flags, build_config  # noqa: E402

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*a, **kw)


def _pretrain_parser(sub) -> None:
    from lm_torch.pretrain import PretrainConfig

    p = sub.add_parser("pretrain", help="pre-train the LM on the built-in corpus",
                       description="Generate the built-in corpus, train the BPE (or char) "
                       "tokenizer and the GPT, then report validation perplexity beside a "
                       "unigram model's and the share of well-formed samples. Writes OUT/"
                       "checkpoint, OUT/metrics.json, OUT/samples.txt and OUT/tb.")
    p.add_argument("--out", default="runs/pretrain", help="run directory (default: runs/pretrain)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--config", default=None, help="JSON file of config values (flags win)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, PretrainConfig)
    p.set_defaults(func=_cmd_pretrain, config_cls=PretrainConfig)


def _cmd_pretrain(args, parser) -> int:
    from lm_torch.io import CheckpointError
    from lm_torch.pretrain import run_pretrain

    cfg = build_config(args.config_cls, args, parser, args.config)
    try:
        metrics = run_pretrain(cfg, args.out, resume=args.resume, progress=not args.quiet)
    except CheckpointError as e:
        parser.error(str(e))
    print(json.dumps(metrics, indent=2))
    print(f"checkpoint: {os.path.join(args.out, 'checkpoint')}")
    return 0


def _sample_parser(sub) -> None:
    from lm_torch.sample import SampleConfig

    p = sub.add_parser("sample", help="sample text from a trained checkpoint",
                       description="Complete prompts with a trained LM; each sample is marked "
                       "ok or BAD by the grammar's is_well_formed.")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (OUT/checkpoint)")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer JSON to use instead of the checkpoint's (must match it)")
    p.add_argument("--prompt", action="append", default=None,
                   help="prompt text (repeatable); default: start from <bos>")
    p.add_argument("--num-samples", type=int, default=4, help="samples per prompt (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    add_config_flags(p, SampleConfig)
    p.set_defaults(func=_cmd_sample, config_cls=SampleConfig)


def _cmd_sample(args, parser) -> int:
    from lm_torch import grammar
    from lm_torch.checkpoint import load_checkpoint
    from lm_torch.io import CheckpointError, printable
    from lm_torch.sample import generate
    from lm_torch.tokenizer import TokenizerError, load_tokenizer

    cfg = build_config(args.config_cls, args, parser)
    if args.num_samples < 1:
        parser.error("--num-samples must be >= 1")
    try:
        ck = load_checkpoint(args.checkpoint)
        tok = ck.tokenizer
        if args.tokenizer:
            tok = load_tokenizer(args.tokenizer)
            if tok.fingerprint() != ck.tokenizer.fingerprint():
                parser.error(f"--tokenizer {args.tokenizer} has {tok.vocab_size} tokens and is "
                             f"not the tokenizer of {args.checkpoint} (vocabulary mismatch); "
                             "drop --tokenizer to use the checkpoint's own")
        prompts = args.prompt or [""]
        ids = [[tok.bos_id] + tok.encode(p) for p in prompts for _ in range(args.num_samples)]
        outs = generate(ck.model, ids, cfg, eos_id=tok.eos_id, pad_id=tok.pad_id,
                        seed=args.seed)
    except (CheckpointError, TokenizerError, ValueError) as e:
        parser.error(str(e))
    for prompt_ids, new in zip(ids, outs):
        text = tok.decode(prompt_ids[1:] + new)
        mark = "ok " if grammar.is_well_formed(text) else "BAD"
        print(f"{mark} {printable(text)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rlaif-lab", description="RLAIF lab: a PyTorch LM, a TensorFlow "
                     "policy and AI feedback, joined by a NumPy bridge.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


_SUBCOMMANDS = [_pretrain_parser, _sample_parser]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sub_parser = parser._subparsers._group_actions[0].choices[args.command]  # for .error()
    try:
        return args.func(args, sub_parser)
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (use --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
