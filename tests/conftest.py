"""Shared fixtures: a small LM pre-trained once per test session, and quiet frameworks.

Test tiers are pytest markers (setup.cfg): ``unit``, ``parity``, ``learning``, ``e2e``,
``notebook``. A module declares its tier with ``pytestmark``; a test without one is ``unit``.
``make test-fast`` runs the unit and parity tiers, ``make test`` everything.
"""

import json
import os
import shutil

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
#: under ``pytest -n N`` (make test): N test processes share the cores, one thread each --
#: more threads per process only make them fight (set before torch and TF start; notebook
#: kernels and child processes inherit it)
XDIST = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST:
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402

torch.set_num_threads(1 if XDIST else max(1, min(2, os.cpu_count() or 1)))


def made_once(tmp_path_factory, name: str, make) -> "os.PathLike":
    """A directory ``name`` filled by ``make(dir)`` once per test session -- across the
    processes of ``pytest -n`` too (a file lock: the first makes it, the others wait)."""
    root = tmp_path_factory.getbasetemp()
    if XDIST:
        root = root.parent  # the directory every worker's basetemp is in
    d = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (d / ".made").is_file():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
            make(d)
            (d / ".made").touch()
    return d


@pytest.fixture(scope="session")
def tiny_corpus():
    from lm_torch.corpus import CorpusConfig, build_corpus

    return build_corpus(CorpusConfig(seed=0, n_train=3000, n_val=200, n_prompts=50))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_corpus):
    from lm_torch.tokenizer import train_tokenizer

    return train_tokenizer("bpe", tiny_corpus.texts(), 512)


@pytest.fixture(scope="session")
def builtin_ckpt(tmp_path_factory):
    """The built-in checkpoint (a small LM, about 50 s to train), in a per-session cache."""
    from lm_torch.pretrain import builtin_checkpoint

    cache = made_once(tmp_path_factory, "rlaif-cache", builtin_checkpoint)
    os.environ["RLAIF_LAB_CACHE"] = str(cache)  # child processes and gym.make find it too
    return builtin_checkpoint(cache)


@pytest.fixture(scope="session", autouse=True)
def sb3_logs(tmp_path_factory):
    """Stable-Baselines3 makes a log directory for every model that learns -- in /tmp, one per
    call, unless ``SB3_LOGDIR`` names one: the session's temporary directory keeps them
    (notebook kernels and child processes inherit it)."""
    os.environ.setdefault("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3-logs")))


@pytest.fixture(scope="session")
def pretrained(builtin_ckpt):
    """The built-in checkpoint's run directory and its metrics."""
    import json

    out = builtin_ckpt.parent
    return out, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A whole ``--preset smoke`` run (about 50 s): its directory and summary. Tests copy its
    stages (``run_helpers.reuse``) and never change it."""
    from rlaif_lab.config import preset
    from rlaif_lab.runner import open_run, run_all

    def make(d):
        run_all(open_run(preset("smoke"), d / "run", progress=False, log=lambda m: None))

    out = made_once(tmp_path_factory, "smoke", make) / "run"
    return out, json.loads((out / "summary.json").read_text())


TIERS = ("unit", "parity", "learning", "e2e", "notebook")


#: modules whose tests are spread over the processes of ``pytest -n`` one by one (long,
#: independent tests); every other module's tests stay in one process, so its module-scoped
#: fixtures are made once (``--dist loadgroup``)
SPREAD = {"test_tasks_pipeline", "test_pipeline", "test_notebooks", "test_lab"}


#: the longest tests (or groups), longest first: handed out first, so the short ones fill the
#: gaps at the end (the smoke run's first user early, so the others rarely wait for it)
FIRST = ("test_tasks_pipeline.py::test_rlaif_makes_summaries_more_faithful",
         "test_pipeline.py::test_smoke_run_learns_from_ai_feedback",
         "test_tasks_pipeline.py::test_rlaif_answers_more_kg_questions",
         "test_ray.py", "test_tasks_pipeline.py::test_rlaif_makes_the_dialogue_bot",
         "test_ai_feedback.py", "test_pipeline.py::test_alpha_sweep",
         "test_pipeline.py::test_same_seed", "test_notebooks.py::test_notebook_executes[06",
         "test_pipeline.py::test_kl_sweep", "test_notebooks.py::test_notebook_executes[05")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if not any(item.get_closest_marker(t) for t in TIERS):
            item.add_marker(pytest.mark.unit)
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(module))

    def rank(item) -> int:
        tail = item.nodeid.split("/")[-1]
        return next((i for i, p in enumerate(FIRST) if tail.startswith(p)), len(FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
