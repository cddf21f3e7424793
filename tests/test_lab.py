"""The course labs: ``rlaif-lab lab list | start | check`` and the grader.

For every registered lab: the teacher's notebook and the registry agree; the student's copy has
stubs and no solutions; and, graded in one kernel session, the teacher's solutions score full
marks, the untouched student copy scores zero on every graded exercise, and a copy with the lab's
one deliberate bug (``MUTATION``) loses exactly that exercise's points. The grader survives student
code that loops, kills the kernel, exits or floods the output, and never shows its own traceback.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rlaif_lab.cli import main
from rlaif_lab.labs import LABS, get_lab
from rlaif_lab.labs import notebook as N
from rlaif_lab.labs.grader import grade_many
from rlaif_lab.labs.spec import notebooks_dir

ROOT = Path(__file__).resolve().parents[1]
IDS = [lab.number for lab in LABS]


def cli(*args, cwd=None):
    """``rlaif-lab ARGS`` in a fresh process: (exit code, stdout, stderr)."""
    env = {**os.environ, "RLAIF_FAST": "1"}
    p = subprocess.run([sys.executable, "-m", "rlaif_lab.cli", *args], capture_output=True,
                       text=True, cwd=cwd or ROOT, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


def mutated(lab):
    """The teacher's notebook with the lab's deliberate bug planted in one solution."""
    nb = N.read(lab.teacher_notebook())
    mut = lab.mutation()
    cells = N.exercise_cells(nb)[mut.exercise]
    assert sum(mut.old in c.source for c in cells) == 1, f"lab {lab.number}: {mut.old!r} not found"
    for c in cells:
        c.source = c.source.replace(mut.old, mut.new)
    return nb


def test_lab_list_shows_at_least_nine_labs_with_three_graded_exercises_each(capsys):
    assert main(["lab", "list", "--json"]) == 0
    labs = json.loads(capsys.readouterr().out)["labs"]
    assert len(labs) >= 9
    for lab in labs:
        graded = [e for e in lab["exercises"] if e["points"] > 0]
        assert len(graded) >= 3, lab["lab"]
        assert lab["objectives"] and lab["minutes"] > 0 and lab["max_points"] == sum(
            e["points"] for e in graded)
    assert main(["lab", "list"]) == 0
    text = capsys.readouterr().out
    assert all(f"lab {lab['lab']}" in text for lab in labs) and "rlaif-lab lab start" in text


@pytest.mark.parametrize("number", IDS)
def test_teacher_notebook_and_registry_agree(number):
    lab = get_lab(number)
    nb = N.read(lab.teacher_notebook())
    cells = N.exercise_cells(nb)
    assert sorted(cells) == sorted(e.id for e in lab.exercises()), "one solution cell per exercise"
    assert N.setup_sources(nb), "a lab needs at least one setup cell"
    checks = [c.source.strip() for c in nb.cells if c.cell_type == "code"]
    for ex in lab.exercises():
        (cell,) = cells[ex.id]
        assert N.BEGIN in cell.source and N.END in cell.source, ex.id
        assert (cell.cell_type == "markdown") == (ex.kind == "open"), ex.id
        if ex.points:
            assert f'check("{ex.id}")' in checks, f"no check cell for {ex.id}"
            assert ex.hint, f"{ex.id} needs a hint"
    assert lab.mutation() is not None and lab.mutation().exercise in {e.id for e in lab.graded()}


@pytest.mark.parametrize("number", IDS)
def test_student_copy_has_stubs_and_no_solutions(number):
    lab = get_lab(number)
    teacher = N.read(lab.teacher_notebook())
    student = N.student_copy(teacher, lab.number)
    sol, stub = N.exercise_cells(teacher), N.exercise_cells(student)
    for ex in lab.exercises():
        (t,), (s,) = sol[ex.id], stub[ex.id]
        body = t.source.split(N.BEGIN)[1].split(N.END)[0].strip().splitlines()
        assert not any(line.strip() in s.source for line in body if line.strip()), ex.id
        assert (N.ANSWER_HERE if ex.kind == "open" else "raise NotImplementedError") in s.source
        if ex.kind == "code":  # the signature and the docstring stay
            first = t.source.strip().splitlines()[0]
            assert s.source.strip().splitlines()[0] == first
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")


@pytest.mark.e2e
@pytest.mark.parametrize("number", IDS)
def test_teacher_full_marks_student_zero_one_bug_costs_one_exercise(number):
    lab = get_lab(number)
    teacher = N.read(lab.teacher_notebook())
    student = N.student_copy(teacher, lab.number)
    full, zero, bug = grade_many(lab, [teacher, student, mutated(lab)],
                                 names=["teacher", "student", "mutated"])
    assert full.full_marks and full.score == lab.max_points > 0, full.text()
    for e in zero.exercises:
        assert e.points == 0, zero.text()
        if e.max_points:
            assert e.status == "failed" and e.message.startswith("not attempted"), zero.text()
    want = {**full.points(), lab.mutation().exercise: 0}
    assert bug.points() == want, bug.text()
    buggy = next(e for e in bug.exercises if e.id == lab.mutation().exercise)
    assert buggy.hint and buggy.hint in bug.text()


HOSTILE = {  # lab 09, whose setup is NumPy alone: cheap kernels
    "debias": "def debias(p_ab, p_ba):\n    while True:\n        pass\n",  # loops when called
    "early-stopping": "import os\nos._exit(1)\n",  # kills the kernel
    "warmup-cosine": ("for i in range(3000):\n    print('spam' * 50)\n"
                      "import math\n"
                      "def warmup_cosine(step, lr, min_lr, warmup, total):\n"
                      "    if step < warmup:\n        return lr * (step + 1) / warmup\n"
                      "    p = min(1.0, (step - warmup) / max(1, total - warmup))\n"
                      "    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr)\n"),
    "predict-position": "import sys\nsys.exit(3)\n",
}


@pytest.mark.e2e
def test_grader_survives_loops_crashes_exits_and_floods(tmp_path):
    lab = get_lab("09")
    nb = N.student_copy(N.read(lab.teacher_notebook()), lab.number)
    for ex, src in HOSTILE.items():
        (cell,) = N.exercise_cells(nb)[ex]
        cell.source = src
    path = tmp_path / "hostile.ipynb"
    nbformat.write(nb, path)
    code, out, err = cli("lab", "check", "09", "--notebook", str(path), "--json", "--timeout", "4")
    assert code == 1 and "Traceback" not in out + err, err
    (line,) = out.strip().splitlines()  # one JSON object, nothing else
    result = {e["id"]: e for e in json.loads(line)["exercises"]}
    assert result["debias"]["status"] == "timeout" and result["debias"]["points"] == 0
    assert result["early-stopping"]["status"] == "crashed"
    assert result["early-stopping"]["points"] == 0
    assert result["warmup-cosine"]["status"] == "passed" and result["warmup-cosine"]["points"] == 2
    assert result["predict-position"]["points"] == 0
    assert "SystemExit" in result["predict-position"]["message"]
    assert len(out) < 10_000  # the 600 kB of prints stayed in the kernel


@pytest.mark.e2e
def test_lab_start_edit_check_as_a_new_user_would(tmp_path):
    d = tmp_path / "mylab"
    code, out, err = cli("lab", "start", "04", "--dir", str(d))
    assert code == 0 and "wrote" in out, err
    path = d / get_lab("04").notebook
    before = path.read_bytes()
    code, out, err = cli("lab", "start", "04", "--dir", str(d))  # never overwrites
    assert code == 2 and "already exists" in err and path.read_bytes() == before
    nb = nbformat.read(path, as_version=4)
    (cell,) = N.exercise_cells(nb)["k3"]
    cell.source = cell.source.replace(
        'raise NotImplementedError("exercise k3: write your solution here")',
        "log_r = ref_logp - logp\n    return np.exp(log_r) - 1 - log_r")
    nbformat.write(nb, path)
    code, out, err = cli("lab", "check", "04", "--dir", str(d))
    assert code == 1 and "Traceback" not in out + err, err
    lines = {ln.split()[1]: ln for ln in out.splitlines() if ln.startswith("  ") and "/" in ln}
    assert lines["k3"].split()[0] == "3/3" and "passed" in lines["k3"]
    assert lines["reward-to-go"].split()[0] == "0/2" and "not attempted" in lines["reward-to-go"]
    assert f"3/{get_lab('04').max_points} points" in out


@pytest.mark.e2e
def test_lab_commands_refuse_bad_input_with_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, says in ((("start", "99"), "no lab"), (("check", "04", "--dir", str(tmp_path)),
                                                        "lab start 04"),
                       (("start", "04", "--dir", str(tmp_path / "file")), "is a file")):
        code, out, err = cli("lab", *args)
        assert code == 2 and says in err and "Traceback" not in err, (args, err)
    broken = tmp_path / get_lab("04").notebook
    broken.write_text("{not json")
    code, out, err = cli("lab", "check", "04", "--dir", str(tmp_path))
    assert code == 2 and "not a notebook" in err and "Traceback" not in err


def test_every_lab_notebook_is_in_the_notebooks_folder():
    assert all((notebooks_dir() / lab.notebook).is_file() for lab in LABS)
