"""DESIGN.md's layers, in fresh interpreters: which package may import which, and no cycles.

bridge (NumPy + Gymnasium) < lm_torch (torch), rl_tf (TensorFlow) < rlaif_lab (both). Two
checks: every module of a package, imported alone in a new interpreter, loads nothing from a
layer it may not see; and the static import graph of the source (imports inside functions
included) has no upward edge and no cycle.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bridge", "lm_torch", "rl_tf", "rlaif_lab")
#: what each package must never load (the application is never loaded by a lower layer)
FORBIDDEN = {
    "bridge": ("torch", "tensorflow", "keras", "lm_torch", "rl_tf", "rlaif_lab", "ray"),
    "lm_torch": ("tensorflow", "keras", "rl_tf", "rlaif_lab", "ray"),
    "rl_tf": ("torch", "lm_torch", "rlaif_lab", "ray"),
}


def modules(package: str) -> list[str]:
    path = ROOT / package
    return [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages(
        [str(path)], prefix="") if not m.name.startswith("_")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_in_a_fresh_interpreter(package):
    """Every module of a package, imported in a new interpreter, loads nothing it may not see."""
    code = ("import sys, importlib\n"
            + "".join(f"importlib.import_module({m!r})\n" for m in modules(package))
            + "print(sorted({m.split('.')[0] for m in sys.modules} & "
            + f"{set(FORBIDDEN[package])!r}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"{package} loads {r.stdout.strip()}"


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> modules it imports, layer violations) from the source, every import counted."""
    mods = {}
    for pkg in PACKAGES:
        for f in (root / pkg).rglob("*.py"):
            parts = list(f.relative_to(root).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    edges, bad = {m: set() for m in mods}, []
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        base = m.split(".") if is_pkg else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mod = (".".join(base[: len(base) - node.level + 1] + [node.module or ""])
                       .rstrip(".") if node.level else node.module or "")
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] in FORBIDDEN.get(m.split(".")[0], ()):
                    bad.append(f"{f.relative_to(root)}:{node.lineno} {m} imports {t}")
                if t in mods and t != m and not (is_pkg and t.startswith(m + ".")):
                    edges[m].add(t)
    return edges, bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = n
        n += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = n
                n += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return out


def test_no_upward_import_and_no_cycle_in_the_source():
    edges, bad = import_graph()
    assert not bad, "\n".join(bad)
    assert not cycles(edges), cycles(edges)


def test_the_checks_would_fail(tmp_path):
    """The static check finds an upward import and a cycle in a tree that has them."""
    for pkg, body in (("bridge", {"a.py": "from . import b\n", "b.py": "import bridge.a\n",
                                  "env.py": "def f():\n    import lm_torch.model\n"}),
                      ("lm_torch", {"m.py": "import rl_tf.x\n"}), ("rl_tf", {"x.py": ""}),
                      ("rlaif_lab", {})):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
        for name, text in body.items():
            (tmp_path / pkg / name).write_text(text)
    edges, bad = import_graph(tmp_path)
    assert any("bridge.env imports lm_torch.model" in b for b in bad)
    assert any("lm_torch.m imports rl_tf.x" in b for b in bad)
    assert cycles(edges) == [["bridge.a", "bridge.b"]]


def test_import_bridge_loads_no_framework():
    r = subprocess.run([sys.executable, "-c", "import sys, bridge\nprint(sorted(m for m in "
                        "sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'keras', "
                        "'lm_torch', 'rl_tf', 'rlaif_lab')))"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize("command, forbidden", [("pretrain", "tensorflow"),
                                                ("cartpole", "torch")])
def test_a_subcommand_loads_only_its_framework(command, forbidden):
    code = (f"import sys\nfrom rlaif_lab.cli import build_parser\nbuild_parser(['{command}'])\n"
            f"print('{forbidden}' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
