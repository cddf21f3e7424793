"""The LM as an environment: backend, Gymnasium env, child process, zero-copy conversion."""

import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rlaif_lab  # noqa: F401  (registers rlaif/TextGeneration-v0)
from bridge.child import (
    ChildBackend,
    ChildCrashedError,
    ChildError,
    ChildProtocolError,
    ChildTimeoutError,
)
from bridge.env import BatchedTextEnv
from bridge.protocol import ActionBatch, RangeError
from lm_torch import server
from lm_torch.backend import LMBackend, from_numpy, to_numpy
from lm_torch.checkpoint import load_checkpoint
from lm_torch.pretrain import BUILTIN
from rlaif_lab.envs import make_backend, make_batched_env, make_text_env

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def no_defunct_children():
    """After every test here: no child process left as a zombie."""
    yield
    import gc

    gc.collect()  # backends dropped without close() are reaped by __del__
    assert _zombies() == 0


def test_torch_to_numpy_shares_memory():
    t = torch.arange(6, dtype=torch.float32)
    a = to_numpy(t)
    assert np.shares_memory(a, t.numpy())
    t[0] = 42.0
    assert a[0] == 42.0  # no copy was made
    b = np.zeros(3, np.float32)
    from_numpy(b)[1] = 7.0
    assert b[1] == 7.0


def test_backend_states_match_the_full_forward(builtin_ckpt):
    ck = load_checkpoint(builtin_ckpt)
    backend = LMBackend(ck.model, ck.tokenizer, max_new_tokens=6)
    prompts = backend.encode_prompts(["movie review :", "user : where is my order ? bot :"])
    s = backend.reset(prompts)
    rng = np.random.default_rng(0)
    for _ in range(4):
        s = backend.step(rng.integers(3, s.logits.shape[1], 2).astype(np.int32))
    for b in range(2):
        row = torch.tensor(s.tokens[b, : s.lengths[b]][None], dtype=torch.long)
        out = ck.model(row, return_hidden=True)
        np.testing.assert_allclose(s.logits[b], out.logits[0, -1].detach(), atol=1e-5)
        np.testing.assert_allclose(s.hidden[b], out.hidden[0, -1].detach(), atol=1e-5)


def test_backend_handles_eos_length_limits_and_bad_input(builtin_ckpt):
    backend = LMBackend.from_checkpoint(builtin_ckpt, max_new_tokens=3)
    eos = backend.tokenizer.eos_id
    s = backend.reset(backend.encode_prompts(["movie review :", "product review :"]))
    s = backend.step(np.array([eos, 10], np.int32))
    assert s.done.tolist() == [True, False]
    s = backend.step(np.array([11, 12], np.int32))  # row 0 is done: its action is ignored
    assert s.tokens[0, s.lengths[0] - 1] == eos and s.lengths[0] == s.lengths[1] - 1
    s = backend.step(np.array([11, 13], np.int32))
    assert s.done.all() and s.lengths[1] == len(backend.encode_prompts(["product review :"])[0]) + 3
    with pytest.raises(RuntimeError, match="every sequence is done"):
        backend.step(np.array([1, 1], np.int32))
    with pytest.raises(ValueError, match="no room in the context"):
        backend.reset([[1] * BUILTIN.model.block_size])
    with pytest.raises(RangeError):
        ActionBatch(np.array([10_000], np.int32), backend.meta)


def test_gymnasium_make_and_check_env_without_warnings(builtin_ckpt):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make("rlaif/TextGeneration-v0", checkpoint=builtin_ckpt, max_new_tokens=8)
        check_env(env.unwrapped)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and "prompt" in info
    total, steps = 0.0, 0
    while True:
        obs, r, term, trunc, info = env.step(int(np.argmax(obs["logits"])))
        total, steps = total + r, steps + 1
        if term or trunc:
            break
    assert steps <= 8 and "completion" in info
    assert term == info["completion"].endswith(".") or trunc


def test_reward_is_the_gold_score_plus_the_kl_term(builtin_ckpt):
    env = make_batched_env(builtin_ckpt, batch_size=4, max_new_tokens=10, kl_coef=0.1, seed=0)
    s = env.reset()
    total = np.zeros(4)
    rng = np.random.default_rng(1)
    ref_logp = np.zeros(4)
    while not s.done.all():
        z = s.logits + rng.gumbel(size=s.logits.shape)
        a = z.argmax(-1).astype(np.int32)
        lp = s.logits - np.log(np.exp(s.logits - s.logits.max(-1, keepdims=True)).sum(
            -1, keepdims=True)) - s.logits.max(-1, keepdims=True)
        ref_logp += np.where(~s.done, lp[np.arange(4), a], 0.0)
        s, r, done, info = env.step(a)
        total += r
    from lm_torch.tasks import gold_score

    gold = [gold_score(f"{p} {c}") for p, c in zip(env.prompts, env.completions())]
    np.testing.assert_allclose(total, np.array(gold) + 0.1 * ref_logp, rtol=1e-4, atol=1e-4)


def _trajectory(env):
    s = env.reset(seed=0)
    rng = np.random.default_rng(0)
    rewards = []
    while not s.done.all():
        s, r, _, _ = env.step((s.logits + rng.gumbel(size=s.logits.shape)).argmax(-1)
                              .astype(np.int32))
        rewards.append(r)
    return s, np.array(rewards)


def test_child_process_gives_the_same_trajectories(builtin_ckpt):
    inproc = make_batched_env(builtin_ckpt, batch_size=6, max_new_tokens=12)
    child = BatchedTextEnv(make_backend(builtin_ckpt, "child", 12,
                                        threads=torch.get_num_threads()),
                           inproc.tokenizer, inproc.prompt_texts, batch_size=6,
                           reward_fn=inproc.reward_fn)
    try:
        a, ra = _trajectory(inproc)
        b, rb = _trajectory(child)
        assert a.equals(b) and np.array_equal(ra, rb)
        with pytest.raises(ChildError, match="no room in the context"):
            child.backend.reset([[1] * BUILTIN.model.block_size])
        child.reset(seed=0)  # the child survives a bad request
    finally:
        child.close()


CRASH = [sys.executable, "-c", "import sys; sys.stderr.write('boom: simulated crash'); "
         "sys.exit(3)"]
HANG = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_crashed_child_is_reported():
    with pytest.raises(ChildCrashedError, match="(?s)code 3.*boom: simulated crash"):
        ChildBackend(CRASH, start_timeout=30)


def test_a_hung_child_times_out():
    with pytest.raises(ChildTimeoutError, match="did not answer within"):
        ChildBackend(HANG, start_timeout=1.5, timeout=1.5)


def test_a_child_killed_mid_run_is_reported(builtin_ckpt):
    backend = ChildBackend(server.command(builtin_ckpt, max_new_tokens=4))
    backend.reset([[1, 5]])
    backend.proc.kill()
    with pytest.raises(ChildCrashedError):
        backend.step(np.array([7], np.int32))
    backend.close()


def test_text_generation_env_over_a_child_process(builtin_ckpt):
    env = make_text_env(builtin_ckpt, process="child", max_new_tokens=4)
    try:
        obs, _ = env.reset(seed=3)
        assert env.observation_space.contains(obs)
        obs, r, term, trunc, _ = env.step(5)
        assert env.observation_space.contains(obs)
    finally:
        env.close()


NOT_JSON = [sys.executable, "-c", "import struct, sys, time; sys.stdout.buffer.write("
            "struct.pack('>Q', 4) + b'Hxyz'); sys.stdout.flush(); time.sleep(60)"]
DEAF = [sys.executable, "-c", "import json, struct, sys, time\n"
        "h = json.dumps({'vocab_size': 50, 'hidden_size': 4, 'fingerprint': 'x', 'pad_id': 0, "
        "'bos_id': 1, 'eos_id': 2}).encode()\n"
        "sys.stdout.buffer.write(struct.pack('>Q', len(h) + 1) + b'H' + h); sys.stdout.flush()\n"
        "time.sleep(60)"]


def _zombies() -> int:
    import psutil

    return sum(c.status() == psutil.STATUS_ZOMBIE for c in psutil.Process().children())


def test_a_malformed_greeting_is_a_protocol_error_and_the_child_is_reaped():
    with pytest.raises(ChildProtocolError, match="not JSON"):
        ChildBackend(NOT_JSON, start_timeout=10)
    assert _zombies() == 0


def test_a_child_that_stops_reading_fails_a_write_within_the_timeout():
    import time

    backend = ChildBackend(DEAF, timeout=2, start_timeout=10)
    t0 = time.monotonic()
    with pytest.raises(ChildTimeoutError):
        backend.reset([[1] * 40] * 5000)  # ~700 KB: more than the pipe holds
    assert time.monotonic() - t0 < 2 + 1
    backend.close()
    assert _zombies() == 0
