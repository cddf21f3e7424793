"""Grade a student's lab notebook: their exercise cells against the hidden tests, in a clean
Jupyter kernel, with a time limit per exercise.

Only the lab's ``setup`` cells (from the teacher's notebook, so a student cannot break them)
and the student's exercise cells run -- never the whole notebook. Each exercise starts from the
namespace the setup made (:mod:`rlaif_lab.labs.kernel`). An exercise whose code runs past the
time limit, or that kills the kernel, scores zero; the kernel is replaced and grading goes on
with the next exercise. The grader's own tracebacks are never shown: every outcome is a line
of the score sheet (``LabResult.text()``) or a field of its JSON (``LabResult.to_json()``).

Several notebooks of one lab can be graded in one kernel session (:func:`grade_many`), one
after the other, each exercise again from the setup's namespace: the test suite grades the
teacher's solutions, the untouched student copy and a copy with one bug that way.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import notebook as N
from .spec import Lab

#: the default time limit of one exercise (its cell and its hidden test), in seconds
EXERCISE_TIMEOUT = 60
SETUP_TIMEOUT = 600


class GraderError(Exception):
    """The lab itself cannot be graded here (its setup fails, no kernel starts): not the
    student's fault; the message says what to fix."""


@dataclass
class ExerciseResult:
    id: str
    kind: str
    title: str
    points: int
    max_points: int
    status: str  #: passed | failed | timeout | crashed | missing | answered | unanswered
    message: str
    hint: str = ""
    seconds: float = 0.0


@dataclass
class LabResult:
    lab: str
    title: str
    notebook: str
    exercises: list[ExerciseResult] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    @property
    def full_marks(self) -> bool:
        return self.score == self.max_points

    def points(self) -> dict[str, int]:
        return {e.id: e.points for e in self.exercises}

    def to_json(self) -> dict:
        return {"lab": self.lab, "title": self.title, "notebook": self.notebook,
                "score": self.score, "max_points": self.max_points,
                "full_marks": self.full_marks, "exercises": [asdict(e) for e in self.exercises]}

    def text(self) -> str:
        lines = [f"lab {self.lab} ({self.title}): {self.score}/{self.max_points} points"
                 f"  [{self.notebook}]"]
        for e in self.exercises:
            score = f"{e.points}/{e.max_points}" if e.max_points else "  - "
            said = e.status if e.message in ("", e.status) else f"{e.status}: {e.message}"
            lines.append(f"  {score:>5}  {e.id:<18} {e.kind:<8} {said}")
            if e.hint and e.points < e.max_points:
                lines.append(f"{'':8}hint: {e.hint}")
        lines.append("full marks" if self.full_marks else
                     f"{self.max_points - self.score} points to go: fix the exercises above, "
                     "save the notebook and check again")
        return "\n".join(lines)


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.update({"RLAIF_FAST": "1", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
                "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"})
    return env


class _Session:
    """One kernel: the lab's setup cells run, then exercises one at a time."""

    def __init__(self, lab: Lab, setup: list[str], workdir: str, setup_timeout: int):
        self.client = nbclient_client(workdir)
        self.lab, self.setup, self.setup_timeout = lab, setup, setup_timeout
        self._ctx = None
        self.n = 0

    def __enter__(self):
        self._ctx = self.client.setup_kernel(env=_kernel_env(), stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
        try:
            self._ctx.__enter__()
        except Exception as e:
            raise GraderError(f"could not start a Jupyter kernel ({type(e).__name__}: {e}); "
                              "is ipykernel installed in this environment (make test sets it "
                              "up)?") from None
        for i, src in enumerate(self.setup + ["import rlaif_lab.labs.kernel as _rlaif_kernel\n"
                                              "_rlaif_kernel.snapshot()"]):
            cell = self._run(src, self.setup_timeout)
            err = [o for o in cell.outputs if o.get("output_type") == "error"]
            if err:
                raise GraderError(f"lab {self.lab.number}: setup cell {i + 1} failed "
                                  f"({err[0].get('ename')}: {err[0].get('evalue')}); run the "
                                  f"teacher's notebook {self.lab.notebook} to see why")
        return self

    def __exit__(self, *exc):
        try:
            self._ctx.__exit__(None, None, None)
        except Exception:  # a dead kernel may fail to shut down cleanly; it is gone either way
            pass
        return False

    def _run(self, source: str, timeout: int):
        cell = nbformat.v4.new_code_cell(source)
        self.client.nb.cells.append(cell)
        self.client.timeout = timeout
        self.client.execute_cell(cell, len(self.client.nb.cells) - 1)
        return cell

    def grade(self, exercise: str, sources: list[str], timeout: int) -> dict:
        """One exercise; raises nbclient's timeout / dead-kernel errors to the caller."""
        nonce = f"@@rlaif-lab-{secrets.token_hex(8)}@@"
        cell = self._run(f"_rlaif_kernel.grade({self.lab.number!r}, {exercise!r}, "
                         f"{sources!r}, {nonce!r})", timeout)
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        for line in text.splitlines():
            if line.startswith(nonce):
                return json.loads(line[len(nonce):])
        return {"passed": False, "points": 0, "message": "the grader got no result from the "
                "kernel (did your code close or replace sys.stdout for good?)"}


def nbclient_client(workdir: str):
    from nbclient import NotebookClient

    log = logging.getLogger("rlaif_lab.labs.grader")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return NotebookClient(nbformat.v4.new_notebook(), timeout=EXERCISE_TIMEOUT,
                          kernel_name="python3", allow_errors=True, interrupt_on_timeout=False,
                          shutdown_kernel="immediate", startup_timeout=120, log=log,
                          resources={"metadata": {"path": workdir}})


def _static_result(lab: Lab, ex, cells) -> ExerciseResult | None:
    """Open questions and missing cells are graded without a kernel."""
    if ex.kind == "open":
        ok = cells is not None and N.answered(cells)
        return ExerciseResult(ex.id, ex.kind, ex.title, 0, 0, "answered" if ok else
                              "unanswered", "not graded (0 points): discuss your answer; the "
                              "teacher's notebook has a model answer")
    if cells is None or not any(c.cell_type == "code" for c in cells):
        return ExerciseResult(ex.id, ex.kind, ex.title, 0, ex.points, "missing",
                              f"no exercise cell for {ex.id} in the notebook (its metadata "
                              f"names the exercise); copy it back from a fresh `rlaif-lab lab "
                              f"start {lab.number} --dir OTHER`", ex.hint)
    return None


def grade_many(lab: Lab, notebooks: list, timeout: int = EXERCISE_TIMEOUT,
               setup_timeout: int = SETUP_TIMEOUT, names: list[str] | None = None
               ) -> list[LabResult]:
    """Grade each notebook (a path or a NotebookNode) of ``lab``; one kernel for all of them
    while nothing goes wrong, a fresh one after a timeout or a crash."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    teacher = N.read(lab.teacher_notebook())
    setup = N.setup_sources(teacher)
    results, queue = [], []
    for i, nb in enumerate(notebooks):
        name = names[i] if names else (str(nb) if isinstance(nb, (str, Path)) else f"#{i}")
        nb = N.read(nb) if isinstance(nb, (str, Path)) else nb
        res = LabResult(lab.number, lab.title, name)
        cells = N.exercise_cells(nb)
        for ex in lab.exercises():
            static = _static_result(lab, ex, cells.get(ex.id))
            res.exercises.append(static or ExerciseResult(ex.id, ex.kind, ex.title, 0,
                                                          ex.points, "pending", "", ex.hint))
            if static is None:
                queue.append((res.exercises[-1], [c.source for c in cells[ex.id]
                                                  if c.cell_type == "code"]))
        results.append(res)
    with tempfile.TemporaryDirectory(prefix="rlaif-lab-grade-") as workdir:
        while queue:
            with _Session(lab, setup, workdir, setup_timeout) as session:
                while queue:
                    er, sources = queue.pop(0)
                    t0 = time.perf_counter()
                    try:
                        r = session.grade(er.id, sources, timeout)
                    except CellTimeoutError:
                        er.status, er.message = "timeout", (
                            f"ran past the time limit of {timeout} s (an endless loop?); "
                            "0 points")
                        er.seconds = round(time.perf_counter() - t0, 1)
                        break  # a fresh kernel for the rest
                    except DeadKernelError:
                        er.status, er.message = "crashed", ("the kernel died while running "
                                                            "this exercise (os._exit, a crash "
                                                            "or out of memory?); 0 points")
                        er.seconds = round(time.perf_counter() - t0, 1)
                        break
                    er.points = int(r.get("points", 0))
                    er.status = "passed" if r.get("passed") else "failed"
                    er.message = str(r.get("message", ""))
                    er.seconds = float(r.get("seconds", 0.0))
    return results


def grade(lab: Lab, notebook, timeout: int = EXERCISE_TIMEOUT) -> LabResult:
    """Grade one notebook of ``lab`` in a clean kernel."""
    return grade_many(lab, [notebook], timeout)[0]
