"""The run config: presets, merging, Literal choices checked in one place, input hashes."""

import dataclasses

import pytest

from bridge import metrics as M
from bridge.files import config_diff, jsonable
from lm_torch.model import GPTConfig
from rl_tf.feedback import FusionConfig
from rl_tf.logger import Logger
from rl_tf.rl_config import RLConfig
from rlaif_lab.config import PRESETS, RunConfig, merge_run, preset
from rlaif_lab.runner import STAGES, stage_hash

pytestmark = pytest.mark.unit


def test_every_preset_builds_and_nested_seeds_follow_the_run_seed():
    for name in PRESETS:
        cfg = merge_run(preset(name), {"seed": 7})
        assert (cfg.lm.seed, cfg.lm.corpus.seed, cfg.judge.seed, cfg.labeler.seed,
                cfg.human.seed, cfg.reward_model.encoder.seed) == (7,) * 6
    assert preset("default") == RunConfig()
    with pytest.raises(ValueError, match="follows the run's seed"):
        merge_run(RunConfig(), {"judge": {"seed": 3}})
    merge_run(RunConfig(), jsonable(RunConfig()))  # a saved config.json reads back


@pytest.mark.parametrize("make, message", [
    (lambda: RLConfig(algo="dqn"), "RLConfig.algo must be one of 'reinforce', 'ppo'"),
    (lambda: FusionConfig(weights="mean"), "FusionConfig.weights must be one of"),
    (lambda: GPTConfig(attn_impl="flash"), "GPTConfig.attn_impl must be one of"),
    (lambda: GPTConfig(n_embd=65, n_head=4), "divisible"),
    (lambda: RLConfig(lr=-1.0), "RLConfig.lr must be > 0"),
    (lambda: merge_run(RunConfig(), {"rl": {"algo": "dqn"}}), "must be one of"),
    (lambda: merge_run(RunConfig(), {"rl": {"iterations": True}}), "must be int"),
    (lambda: merge_run(RunConfig(), {"feedback": {"fusion": {"fixed_weights": [1, "a"]}}}),
     "must be float"),
    (lambda: merge_run(RunConfig(), {"feedback": {"fusion": {"fixed_weights": [1.0]}}}),
     "needs 4 values"),
    (lambda: merge_run(RunConfig(), {"rl": {"max_new_tokens": 500}}), "below"),
])
def test_bad_values_are_refused_with_the_field_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_stage_hashes_change_exactly_downstream_of_a_changed_value():
    base = RunConfig()
    changed = {
        "rl.alpha": (merge_run(base, {"rl": {"alpha": 2.0}}),
                     {"rl", "rl_human", "evaluate", "report"}),
        "labeler.flip_rate": (merge_run(base, {"labeler": {"flip_rate": 0.2}}),
                              {"labels", "reward_model", "reward_model_human", "rl", "rl_human",
                               "evaluate", "report"}),
        "eval.n_show": (merge_run(base, {"eval": {"n_show": 3}}), {"evaluate", "report"}),
        "seed": (merge_run(base, {"seed": 1}), set(STAGES)),
    }
    for what, (cfg, expected) in changed.items():
        differ = {s for s in STAGES if stage_hash(cfg, s) != stage_hash(base, s)}
        assert differ == expected, what


def test_config_diff_names_the_values():
    a, b = jsonable(RunConfig()), jsonable(merge_run(RunConfig(), {"rl": {"lr": 0.01}}))
    assert config_diff(a, b) == ["rl.lr: 0.001 -> 0.01"]


def test_an_unregistered_metric_name_is_refused():
    with pytest.raises(M.UnregisteredMetricError, match="policy/approx_kl"):
        Logger().log(1, {"policy/approx_kl": 0.1})
    Logger().log(1, {M.APPROX_KL_K1: 0.1, "feedback/weight/reward": 1.0})
    assert M.describe("feedback/source/grammar").startswith("mean raw score")


def test_every_registered_metric_has_a_formula():
    for m in M.REGISTRY.values():
        assert m.formula and dataclasses.is_dataclass(m)
