"""``rlaif-lab lab list | start | check``: what the command line does with the labs.

Each function returns the exit code: 0 done (``check``: full marks), 1 (``check``: points
missing), 2 bad input, with a message that says what to fix (raised as :class:`UsageError`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import notebook as N
from .registry import LABS, get_lab


class UsageError(Exception):
    """Bad input from the command line; the CLI exits 2 with this message."""


def _lab(number: str):
    try:
        return get_lab(number)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


def lab_summary(lab) -> dict:
    return {"lab": lab.number, "title": lab.title, "notebook": f"notebooks/{lab.notebook}",
            "book": lab.book, "minutes": lab.minutes, "prerequisites": list(lab.prerequisites),
            "objectives": list(lab.objectives), "max_points": lab.max_points,
            "exercises": [{"id": e.id, "kind": e.kind, "points": e.points, "title": e.title}
                          for e in lab.exercises()]}


def cmd_list(as_json: bool = False) -> int:
    rows = [lab_summary(lab) for lab in LABS]
    if as_json:
        print(json.dumps({"labs": rows}, indent=2))
        return 0
    for r in rows:
        pre = ", ".join(r["prerequisites"]) or "none"
        graded = sum(1 for e in r["exercises"] if e["points"])
        print(f"lab {r['lab']}  {r['title']}")
        print(f"        book {r['book']}; about {r['minutes']} min; before: {pre}; "
              f"{graded} graded exercises, {r['max_points']} points; {r['notebook']}")
        for o in r["objectives"]:
            print(f"        - {o}")
        for e in r["exercises"]:
            pts = f"{e['points']} pt" if e["points"] else "open"
            print(f"          [{pts:>4}] {e['id']:<22} {e['kind']:<8} {e['title']}")
        print()
    print("start one with: rlaif-lab lab start NN --dir DIR; grade it with: "
          "rlaif-lab lab check NN --dir DIR")
    return 0


def student_path(lab, directory: str | Path) -> Path:
    return Path(directory) / lab.notebook


def cmd_start(number: str, directory: str) -> int:
    lab = _lab(number)
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise UsageError(f"--dir {d} is a file; give a directory for the lab's notebook")
    target = student_path(lab, d)
    if target.exists():
        raise UsageError(f"{target} already exists: it may hold your work, so it is left as it "
                         f"is. Grade it with `rlaif-lab lab check {lab.number} --dir {d}`, or "
                         "start afresh in another --dir (or move the file away first)")
    try:
        nb = N.student_copy(N.read(lab.teacher_notebook()), lab.number)
        d.mkdir(parents=True, exist_ok=True)
        N.write_new(nb, target)
    except N.NotebookError as e:
        raise UsageError(f"the teacher's notebook of lab {lab.number} cannot be used: {e}")
    except FileExistsError:
        raise UsageError(f"{target} already exists; it is left as it is") from None
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror or e}") from None
    graded = lab.graded()
    print(f"wrote {target}: lab {lab.number} ({lab.title}), {len(graded)} graded exercises, "
          f"{lab.max_points} points")
    print(f"open it in Jupyter (make notebooks, or jupyter notebook {target}), solve the "
          f"exercises, save, then: rlaif-lab lab check {lab.number} --dir {d}")
    return 0


def cmd_check(number: str, directory: str, notebook: str | None = None, as_json: bool = False,
              timeout: int = 60) -> int:
    from .grader import GraderError, grade

    lab = _lab(number)
    if timeout < 1:
        raise UsageError("--timeout must be at least 1 second")
    path = Path(notebook) if notebook else student_path(lab, directory)
    if not path.is_file():
        hint = (f"run `rlaif-lab lab start {lab.number} --dir {directory}` first"
                if not notebook else "check the path")
        raise UsageError(f"no notebook at {path}: {hint}")
    try:
        nb = N.read(path)
        result = grade(lab, nb, timeout=timeout)
    except N.NotebookError as e:
        raise UsageError(str(e)) from None
    except GraderError as e:
        print(f"rlaif-lab lab check: {e}", file=sys.stderr)
        return 2
    result.notebook = str(path)
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        print(result.text())
    return 0 if result.full_marks else 1
