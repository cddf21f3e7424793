"""The ``rlaif-lab`` command line.

Subcommands import their framework when they run (start-up speed, not a layer dodge: this is
the application layer), so ``rlaif-lab pretrain`` never loads TensorFlow and ``rlaif-lab
cartpole`` never loads torch. Every config is built and checked before anything is written; bad
input -- a flag, a ``--config`` file, an ``--out`` that cannot be used, a corrupt checkpoint --
exits with code 2 and a message that says what to fix, and leaves no file behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bridge.files import RunDirError, check_writable_dir  # noqa: E402

from .flags import add_config_flags, flag_values, read_config_file  # noqa: E402
from .flags import merge as merge_values  # noqa: E402

EXIT_USAGE = 2


def build_config(cls, args, parser, config_file: str | None = None, base=None, merge=None):
    """The config of ``cls`` from ``base`` (default ``cls()``), then ``config_file`` (JSON),
    then the flags; exit 2 with the reason if any of it is invalid."""
    merge = merge or merge_values
    try:
        cfg = base if base is not None else cls()
        if config_file:
            cfg = merge(cfg, read_config_file(config_file))
        return merge(cfg, flag_values(cls, args))
    except (TypeError, ValueError) as e:
        parser.error(str(e))


def _out_dir(parser, out: str) -> Path:
    try:
        return check_writable_dir(out)
    except RunDirError as e:
        parser.error(str(e))


DEVICE_HELP = ("where PyTorch computes: auto (CUDA when available, else the CPU), cpu, cuda or "
               "cuda:N (default: auto); the policy side follows TensorFlow's own placement")


def _device_flag(p) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)


def _device(parser, name: str):
    """The resolved torch.device of ``--device``; exit 2 naming the fix."""
    from lm_torch.device import resolve_device

    try:
        return resolve_device(name)
    except ValueError as e:
        parser.error(str(e))


def _scale_flags(p) -> None:
    g = p.add_argument_group("scale-out (where the RL stage's rollouts run; the numbers do not "
                             "depend on it)")
    g.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: in this process (default); ray: Ray actors")
    g.add_argument("--workers", type=int, default=1,
                   help="rollout workers with --backend ray, at most rl.shards (default: 1)")
    g.add_argument("--ray-address", default=None,
                   help="join this Ray cluster (from `ray start --head`) instead of starting "
                        "a local one")
    g.add_argument("--worker-timeout", type=float, default=300.0,
                   help="seconds before a shard's worker counts as hung and is replaced "
                        "(default: 300)")
    g.add_argument("--feedback-actors", action="store_true",
                   help="run the learned feedback source (reward model or judge) in a Ray "
                        "actor of its own")


def _scale(parser, args, cfg):
    """The ScaleOut of the flags, checked against ``cfg``; exit 2 naming the fix."""
    from .context import ScaleOut

    try:
        scale = ScaleOut(args.backend, args.workers, args.ray_address, args.worker_timeout,
                         args.feedback_actors)
        scale.check(cfg.rl.shards)
    except ValueError as e:
        parser.error(str(e))
    if scale.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            parser.error("--backend ray needs Ray: pip install -c constraints.txt "
                         "'rlaif-lab[ray]' (make test and make run install it)")
    return scale


def _pretrain_flags(p) -> None:
    from lm_torch.pretrain import PretrainConfig

    p.description = ("Generate the built-in corpus, train the BPE (or char) "
                       "tokenizer and the GPT, then report validation perplexity beside a "
                       "unigram model's and the share of well-formed samples. Writes OUT/"
                       "checkpoint, OUT/metrics.json, OUT/samples.txt and OUT/tb.")
    p.add_argument("--out", default="runs/pretrain", help="run directory (default: runs/pretrain)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--config", default=None, help="JSON file of config values (flags win)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _device_flag(p)
    add_config_flags(p, PretrainConfig)
    p.set_defaults(func=_cmd_pretrain, config_cls=PretrainConfig, parser=p)


def _cmd_pretrain(args, parser) -> int:
    from lm_torch.io import CheckpointError
    from lm_torch.pretrain import run_pretrain

    cfg = build_config(args.config_cls, args, parser, args.config)
    device = _device(parser, args.device)
    _out_dir(parser, args.out)
    try:
        metrics = run_pretrain(cfg, args.out, resume=args.resume, progress=not args.quiet,
                               device=device)
    except (CheckpointError, RunDirError, OSError) as e:
        parser.error(str(e))
    print(json.dumps(metrics, indent=2))
    print(f"checkpoint: {os.path.join(args.out, 'checkpoint')}")
    return 0


def _sample_flags(p) -> None:
    from lm_torch.sample import SampleConfig

    p.description = ("Complete prompts with a trained LM; each sample is marked ok or BAD by "
                     "the grammar's is_well_formed.")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (OUT/checkpoint)")
    p.add_argument("--tokenizer", default=None,
                   help="tokenizer JSON to use instead of the checkpoint's (must match it)")
    p.add_argument("--prompt", action="append", default=None,
                   help="prompt text (repeatable); default: start from <bos>")
    p.add_argument("--num-samples", type=int, default=4, help="samples per prompt (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    _device_flag(p)
    add_config_flags(p, SampleConfig)
    p.set_defaults(func=_cmd_sample, config_cls=SampleConfig, parser=p)


def _cmd_sample(args, parser) -> int:
    from lm_torch import grammar
    from lm_torch.checkpoint import load_checkpoint
    from lm_torch.io import CheckpointError, printable
    from lm_torch.sample import generate
    from lm_torch.tokenizer import TokenizerError, load_tokenizer

    cfg = build_config(args.config_cls, args, parser)
    if args.num_samples < 1:
        parser.error("--num-samples must be >= 1")
    device = _device(parser, args.device)
    try:
        ck = load_checkpoint(args.checkpoint, map_location=str(device))
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


def _cartpole_flags(p) -> None:
    from rl_tf.cartpole import CartpoleConfig

    p.description = ("Train a Keras policy with PPO or REINFORCE on a Gymnasium "
                       "environment (CartPole-v1 by default), evaluating it greedily as it "
                       "learns. Writes OUT/summary.json, OUT/history.json, OUT/policy.keras, "
                       "OUT/learning_curve.png and OUT/tb. Flags of the algorithm not chosen "
                       "by --algo are ignored.")
    p.add_argument("--out", default="runs/cartpole", help="run directory (default: "
                   "runs/cartpole)")
    p.add_argument("--config", default=None, help="JSON file of config values (flags win)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p, CartpoleConfig)
    p.set_defaults(func=_cmd_cartpole, config_cls=CartpoleConfig, parser=p)


def _cmd_cartpole(args, parser) -> int:
    import gymnasium as gym

    from rl_tf.cartpole import run_cartpole
    from rl_tf.networks import UnsupportedSpaceError

    cfg = build_config(args.config_cls, args, parser, args.config)
    _out_dir(parser, args.out)
    try:
        summary = run_cartpole(cfg, args.out, progress=not args.quiet)
    except (RunDirError, UnsupportedSpaceError, gym.error.Error, OSError) as e:
        parser.error(str(e))
    print(json.dumps(summary, indent=2))
    return 0


def _run_flags(p) -> None:
    from .config import DERIVED_FIELDS, RunConfig

    p.description = ("Run every stage of RLAIF on the built-in corpus: pretrain -> SFT -> AI "
                     "judges -> AI-labelled preferences -> reward model -> RL with AI feedback "
                     "-> evaluation -> report. Stages already done in --out are kept; "
                     "--resume continues an interrupted run (with the same config). Writes "
                     "OUT/summary.json, OUT/report/report.md (with plots) and TensorBoard logs "
                     "under OUT/*/tb.")
    p.add_argument("--preset", default="default", help="smoke | default | full "
                   "(default: default)")
    p.add_argument("--config", default=None, help="JSON file of config values (flags win)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<preset>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (required when it already exists)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_flag(p)
    _scale_flags(p)
    add_config_flags(p, RunConfig, hidden=DERIVED_FIELDS)
    p.set_defaults(func=_cmd_run, config_cls=RunConfig, parser=p)


def _run_config(args, parser):
    from .config import merge_run, preset

    try:  # the preset's sizes depend on the task (--task, else the --config file's)
        task = args.task
        if task is None and getattr(args, "config", None):
            task = read_config_file(args.config).get("task")
        base = preset(args.preset, task if isinstance(task, str) else "reviews")
    except ValueError as e:
        parser.error(str(e))
    return build_config(args.config_cls, args, parser, getattr(args, "config", None), base,
                        merge_run)


def _cmd_run(args, parser) -> int:
    from lm_torch.io import CheckpointError

    from .context import WorkerError
    from .runner import open_run, run_all

    cfg = _run_config(args, parser)
    device = _device(parser, args.device)
    scale = _scale(parser, args, cfg)
    out = _out_dir(parser, args.out or f"runs/{args.preset}")
    try:
        ctx = open_run(cfg, out, resume=args.resume, progress=not args.quiet,
                       device=str(device), scale=scale)
        summary = run_all(ctx)
    except (RunDirError, CheckpointError, OSError) as e:
        parser.error(str(e))
    except WorkerError as e:  # not bad input: the run can be resumed with --resume
        print(f"rlaif-lab run: {e}; the run's last checkpoint is kept (--resume continues "
              "it)", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    print(f"report: {out / 'report' / 'report.md'}")
    return 0


def _sweep_flags(p) -> None:
    from .config import DERIVED_FIELDS, RunConfig
    from .sweep import SWEEPS

    p.description = ("Ablations of book 5.3.3: runs of one preset that differ in alpha, in the "
                     "label noise (plain vs robust reward model), in the fusion weights and "
                     "the reward (distilled RM vs d-RLAIF), or in the KL coefficient (kl: "
                     "over-optimisation, proxy vs human stand-in against sqrt(KL), with Gao et "
                     "al.'s fit in OUT/overoptimisation.png). A stage is trained once and shared "
                     "by every point whose inputs are the same (the log says which). Writes "
                     "OUT/sweep.md, OUT/sweep.json and OUT/sweep.png.")
    p.add_argument("kind", choices=sorted(SWEEPS), help="what to vary")
    p.add_argument("--preset", default="smoke", help="preset of every point (default: smoke)")
    p.add_argument("--out", default=None, help="sweep directory (default: runs/sweep-KIND)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_flag(p)
    add_config_flags(p, RunConfig, hidden=DERIVED_FIELDS)
    p.set_defaults(func=_cmd_sweep, config_cls=RunConfig, parser=p)


def _cmd_sweep(args, parser) -> int:
    from lm_torch.io import CheckpointError

    from .sweep import run_sweep

    cfg = _run_config(args, parser)
    device = _device(parser, args.device)
    out = _out_dir(parser, args.out or f"runs/sweep-{args.kind}")
    try:
        rows = run_sweep(args.kind, cfg, out, progress=not args.quiet, device=str(device))
    except (RunDirError, CheckpointError, OSError) as e:
        parser.error(str(e))
    print((out / "sweep.md").read_text())
    return 0 if rows else 1


def _lab_flags(p) -> None:
    p.description = ("Course labs: the chapter notebooks with exercises and a grader. `lab list` "
                     "shows the labs, `lab start NN --dir D` writes the student's notebook "
                     "(solutions stripped; an existing file is never replaced), `lab check NN "
                     "--dir D` grades it against hidden tests in a clean kernel and exits 0 "
                     "only at full marks. See docs/teaching.md.")
    sub = p.add_subparsers(dest="lab_command", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="the labs, their objectives, exercises and points")
    ls.add_argument("--json", action="store_true", help="one JSON object")
    st = sub.add_parser("start", help="write the student's copy of lab NN")
    st.add_argument("number", help="lab number, e.g. 04")
    st.add_argument("--dir", default="labs", help="directory for the notebook (default: labs)")
    ck = sub.add_parser("check", help="grade the student's notebook of lab NN")
    ck.add_argument("number", help="lab number, e.g. 04")
    ck.add_argument("--dir", default="labs", help="directory of the notebook (default: labs)")
    ck.add_argument("--notebook", default=None, help="grade this notebook file instead")
    ck.add_argument("--json", action="store_true", help="one JSON object (for a gradebook)")
    ck.add_argument("--timeout", type=int, default=60,
                    help="seconds allowed per exercise (default: 60)")
    p.set_defaults(func=_cmd_lab, parser=p)


def _cmd_lab(args, parser) -> int:
    from .labs import commands

    try:
        if args.lab_command == "list":
            return commands.cmd_list(args.json)
        if args.lab_command == "start":
            return commands.cmd_start(args.number, args.dir)
        return commands.cmd_check(args.number, args.dir, args.notebook, args.json,
                                  args.timeout)
    except commands.UsageError as e:
        parser.error(str(e))


#: subcommand -> (one line of help, function adding its flags; it imports its framework)
SUBCOMMANDS = {
    "pretrain": ("pre-train the LM on the built-in corpus (PyTorch)", _pretrain_flags),
    "sample": ("sample text from a trained checkpoint (PyTorch)", _sample_flags),
    "cartpole": ("train PPO or REINFORCE on CartPole (TensorFlow)", _cartpole_flags),
    "run": ("the whole RLAIF pipeline, stage by stage, with report", _run_flags),
    "sweep": ("ablations over alpha, label noise, or fusion / reward kind", _sweep_flags),
    "lab": ("course labs: list, start a student's notebook, check (grade) it", _lab_flags),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` gets its flags (and its imports).

    ``argv=None`` builds every subcommand (used by tests and documentation).
    """
    parser = argparse.ArgumentParser(
        prog="rlaif-lab", description="RLAIF lab: a PyTorch LM, a TensorFlow policy and AI "
        "feedback, joined by a NumPy bridge.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=argparse.ArgumentParser)
    wanted = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for name, (help_text, add_flags) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if argv is None or name == wanted:
            add_flags(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return args.func(args, args.parser)
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept (use --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
