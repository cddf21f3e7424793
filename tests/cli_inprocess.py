"""The console entry point (``rlaif_lab.cli.main``) run in the test process, for the checks that
need no fresh interpreter: a child process costs seconds of imports each time. The console
command itself, in a child, is run by ``test_cli`` (pretrain, sample, cartpole) and
``test_cli_hostile``."""

import contextlib
import io
import subprocess


def run_main(*args: str) -> subprocess.CompletedProcess:
    """``rlaif-lab ARGS`` in this process: its exit code, stdout and stderr."""
    from rlaif_lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's errors and --help
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
