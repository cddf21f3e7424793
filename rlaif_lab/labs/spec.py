"""What a lab is: its exercises (with their hidden tests) and its registry entry.

A lab's hidden tests live in a module of :mod:`rlaif_lab.labs.checks` (``lab04.py``): one
function per exercise, registered with :func:`exercise`, that receives the namespace the
student's exercise cell ran in and raises :class:`Fail` (or any ``AssertionError``) when the
answer is wrong. The module also names one deliberate bug (:class:`Mutation`) that the test
suite plants in the teacher's solution to check that exactly that exercise loses its points.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

Kind = Literal["code", "predict", "open"]
KINDS = ("code", "predict", "open")


class Fail(AssertionError):
    """A wrong answer; the message says what was wrong (shown to the student)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lab."""

    id: str  #: the name used in the notebook cell's metadata and on the score sheet
    kind: Kind  #: code to write, a number to predict then check, or an open question
    points: int  #: 0 for open questions (not graded)
    title: str  #: one line, shown by ``rlaif-lab lab list``
    hint: str = ""  #: shown when the exercise fails
    check: Callable[[dict], None] | None = None  #: the hidden test; None for open questions


@dataclass(frozen=True)
class Mutation:
    """A deliberate bug: replace ``old`` by ``new`` in the solution cell of ``exercise``."""

    exercise: str
    old: str
    new: str


@dataclass(frozen=True)
class Lab:
    """A registry entry: the teacher's notebook and what a course needs to know about it."""

    number: str  #: "04"
    notebook: str  #: file name under notebooks/ (the teacher's copy, with solutions)
    title: str
    objectives: tuple[str, ...]
    minutes: int  #: expected duration of a class session
    prerequisites: tuple[str, ...] = ()  #: lab numbers to do first
    checks: str = ""  #: module of the hidden tests (default rlaif_lab.labs.checks.labNN)
    book: str = ""  #: the book's chapter / sections covered

    @property
    def checks_module(self) -> str:
        return self.checks or f"rlaif_lab.labs.checks.lab{self.number}"

    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(_module(self.checks_module).EXERCISES)

    def mutation(self) -> Mutation | None:
        return getattr(_module(self.checks_module), "MUTATION", None)

    def exercise(self, exercise_id: str) -> Exercise:
        for ex in self.exercises():
            if ex.id == exercise_id:
                return ex
        raise KeyError(f"lab {self.number} has no exercise {exercise_id!r}")

    @property
    def max_points(self) -> int:
        return sum(e.points for e in self.exercises())

    def graded(self) -> tuple[Exercise, ...]:
        return tuple(e for e in self.exercises() if e.points > 0)

    def teacher_notebook(self) -> Path:
        return notebooks_dir() / self.notebook


def notebooks_dir() -> Path:
    """The checkout's notebooks/ folder (the package is installed editable: ``pip install -e``)."""
    import rlaif_lab

    return Path(rlaif_lab.__file__).resolve().parents[1] / "notebooks"


def _module(name: str):
    return importlib.import_module(name)


@dataclass
class ExerciseList:
    """What a checks module builds with :func:`exercise` and :func:`open_question`."""

    items: list[Exercise] = field(default_factory=list)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)

    def add(self, ex: Exercise) -> None:
        if ex.kind not in KINDS:
            raise ValueError(f"exercise {ex.id}: kind must be one of {KINDS}, not {ex.kind!r}")
        if any(e.id == ex.id for e in self.items):
            raise ValueError(f"exercise {ex.id!r} is defined twice")
        if (ex.kind == "open") != (ex.points == 0) or (ex.kind == "open") != (ex.check is None):
            raise ValueError(f"exercise {ex.id}: open questions, and only they, have 0 points "
                             "and no check")
        self.items.append(ex)


def exercise(registry: ExerciseList, id: str, kind: Kind, points: int, title: str,
             hint: str = "") -> Callable:
    """Decorator: register the decorated function as the hidden test of exercise ``id``."""
    def wrap(fn: Callable[[dict], None]) -> Callable[[dict], None]:
        registry.add(Exercise(id, kind, points, title, hint, fn))
        return fn
    return wrap


def open_question(registry: ExerciseList, id: str, title: str) -> None:
    """An open question: a model answer in the teacher's copy, not graded (0 points)."""
    registry.add(Exercise(id, "open", 0, title))


# --- helpers for the hidden tests ---------------------------------------------------------------
def need(ns: dict, name: str, what: str = "function"):
    """``ns[name]``, or a :class:`Fail` saying it is not defined (yet)."""
    if name not in ns:
        raise Fail(f"`{name}` is not defined: write the {what} `{name}` in the exercise cell")
    value = ns[name]
    if what == "function" and not callable(value):
        raise Fail(f"`{name}` should be a function, not a {type(value).__name__}")
    return value


def number(ns: dict, name: str) -> float:
    """``ns[name]`` as a float, or a :class:`Fail` naming what is missing."""
    value = need(ns, name, "number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise Fail(f"`{name}` should be a number, not {type(value).__name__}") from None
    if out != out:
        raise Fail(f"`{name}` is NaN")
    return out


def close(got, want, tol: float, what: str) -> None:
    """Arrays (or numbers) equal to ``tol``, or a :class:`Fail` with the largest difference."""
    import numpy as np

    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{what}: expected numbers, got {type(got).__name__}") from None
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        raise Fail(f"{what}: expected shape {w.shape}, got {g.shape}")
    if not np.all(np.isfinite(g) == np.isfinite(w)):
        raise Fail(f"{what}: got non-finite values where the answer is finite (or the reverse)")
    fin = np.isfinite(w)
    err = float(np.max(np.abs(g[fin] - w[fin]))) if fin.any() else 0.0
    if err > tol:
        raise Fail(f"{what}: off by {err:.3g} (allowed {tol:g})")
