"""DESIGN.md's import rule: lm_torch never loads TensorFlow, rl_tf never loads torch."""

import pkgutil
import subprocess
import sys

import pytest


def _modules(package):
    pkg = __import__(package)
    return [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]


@pytest.mark.parametrize("package, forbidden", [
    ("lm_torch", "tensorflow"), ("rl_tf", "torch"),
])
def test_a_side_imports_alone(package, forbidden):
    mods = _modules(package)
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods)
            + f"bad = [m for m in sys.modules if m == {forbidden!r} or "
            f"m.startswith({forbidden + '.'!r})]\nprint(len(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0", f"{package} pulled in {forbidden}"


def test_bridge_protocol_and_env_import_neither_framework():
    code = ("import sys\nimport bridge, bridge.protocol, bridge.npz, bridge.env, bridge.child\n"
            "import bridge.cli\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
