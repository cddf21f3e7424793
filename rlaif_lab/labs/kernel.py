"""The grader's half that runs inside the Jupyter kernel, and the notebooks' self-check.

The grader (:mod:`rlaif_lab.labs.grader`) starts a clean kernel, runs the lab's ``setup``
cells, calls :func:`snapshot`, then sends one cell per exercise that calls :func:`grade`: the
namespace goes back to the snapshot, the student's exercise cell runs (its output captured and
capped), the hidden test runs on the resulting namespace, and one line ``<nonce><json>`` is
printed for the grader to read. Nothing the student's code raises escapes: it becomes the
exercise's message. A cell that never returns, or a kernel that dies, is handled by the grader
(a time limit, a fresh kernel).

In a notebook, ``check = selfcheck("04")`` and then ``check("k3")`` run the same hidden test on
the notebook's own namespace and print the verdict (they never raise).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import sys
import time
import traceback

#: characters of the student's output kept per exercise (the rest is counted and dropped)
OUTPUT_LIMIT = 4000
_IPYTHON_NAMES = re.compile(r"^(_+|_i+|_i?\d+|_oh|_dh|_sh|In|Out|exit|quit|get_ipython)$")
_snapshot: dict | None = None


class CappedText(io.TextIOBase):
    """A write-only text stream that keeps the first ``limit`` characters."""

    def __init__(self, limit: int = OUTPUT_LIMIT):
        self.limit, self.kept, self.dropped = limit, [], 0
        self._n = 0

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        room = self.limit - self._n
        if room > 0:
            self.kept.append(s[:room])
            self._n += min(room, len(s))
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def getvalue(self) -> str:
        return "".join(self.kept)


def _user_ns() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("rlaif_lab.labs.kernel.grade runs inside an IPython kernel")
    return shell.user_ns


def snapshot() -> None:
    """Remember the namespace the setup cells made (each exercise starts from it)."""
    global _snapshot
    _snapshot = dict(_user_ns())


def restore() -> None:
    """Put the namespace back to the snapshot: names added since are removed."""
    ns = _user_ns()
    if _snapshot is None:
        return
    for k in list(ns):
        if k not in _snapshot and not _IPYTHON_NAMES.match(k):
            del ns[k]
    ns.update(_snapshot)


def describe(e: BaseException, where: str) -> str:
    """One line for an exception raised by the student's code: its type, message, line."""
    line = ""
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        if fr.filename.startswith("<exercise"):
            line = f" (line {fr.lineno} of your cell: {(fr.line or '').strip()[:80]})"
            break
    msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return f"{where} raised {type(e).__name__}{': ' + msg if msg else ''}{line}"


def _run_cell_sources(sources, ns: dict, exercise: str) -> str | None:
    """Execute the student's cell(s) in ``ns``; returns an error line or None."""
    from IPython import get_ipython

    shell = get_ipython()
    for src in sources:
        code = shell.transform_cell(src) if shell is not None else src
        try:
            exec(compile(code, f"<exercise {exercise}>", "exec"), ns)
        except NotImplementedError:
            return "not attempted yet: the cell still raises NotImplementedError"
        except BaseException as e:  # the student's code may fail in any way, exits included
            return describe(e, "your exercise cell")
    return None


def run_check(ex, ns: dict) -> tuple[bool, str]:
    """Run the hidden test of ``ex`` on ``ns``: (passed, message)."""
    from .spec import Fail

    try:
        ex.check(ns)
    except Fail as e:
        return False, str(e) or "a hidden test failed"
    except AssertionError as e:
        return False, f"a hidden test failed: {e}" if str(e) else "a hidden test failed"
    except NotImplementedError:
        return False, "not attempted yet: your function still raises NotImplementedError"
    except BaseException as e:  # raised by the student's function while the test called it
        return False, describe(e, "your code")
    return True, "passed"


def _exercise(lab: str, exercise: str):
    from .registry import get_lab

    return get_lab(lab).exercise(exercise)


def grade(lab: str, exercise: str, sources: list[str], nonce: str) -> None:
    """Grade one exercise in this kernel; prints ``nonce`` + one JSON object."""
    t0 = time.perf_counter()
    restore()
    ns = _user_ns()
    out = CappedText()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            ex = _exercise(lab, exercise)
            cell_error = _run_cell_sources(sources, ns, exercise)
            passed, message = run_check(ex, ns)
        except BaseException as e:  # a broken kernel state; reported, never raised
            ex, cell_error, passed, message = None, None, False, describe(e, "grading")
    if not passed and cell_error:
        message = cell_error if cell_error.startswith("not attempted") else (
            f"{cell_error}; {message}")
    result = {"exercise": exercise, "passed": passed, "message": message,
              "points": ex.points if (passed and ex is not None) else 0,
              "seconds": round(time.perf_counter() - t0, 3),
              "output_chars": out._n + out.dropped}
    sys.stdout.write(nonce + json.dumps(result) + "\n")
    sys.stdout.flush()


def selfcheck(lab: str):
    """``check = selfcheck("04")``; ``check("k3")`` prints whether exercise k3 passes."""
    importlib.import_module("rlaif_lab.labs.registry").get_lab(lab)  # fail early on a typo

    def check(exercise: str) -> None:
        ns = sys._getframe(1).f_globals
        ex = _exercise(lab, exercise)
        if ex.kind == "open":
            print(f"{exercise}: an open question, not graded; discuss it with your teacher")
            return
        out = CappedText()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            passed, message = run_check(ex, ns)
        if passed:
            print(f"{exercise}: passed ({ex.points}/{ex.points} points)")
        else:
            print(f"{exercise}: not yet (0/{ex.points} points): {message}"
                  + (f"\n  hint: {ex.hint}" if ex.hint else ""))

    return check
