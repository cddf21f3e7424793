"""Hidden tests of lab 10 (PyTorch and TensorFlow side by side)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("layer-norm-tf", "tf.sqrt(var + eps)", "tf.sqrt(var) + eps")


@exercise(EXERCISES, "layer-norm-tf", "code", 3,
          "the TensorFlow twin of torch's layer_norm, epsilon 1e-5",
          hint="mean, var = tf.nn.moments(x, axes=[-1], keepdims=True); "
               "(x - mean) / tf.sqrt(var + eps) * weight + bias")
def _layer_norm(ns: dict) -> None:
    import tensorflow as tf
    import torch
    import torch.nn.functional as F

    fn = need(ns, "layer_norm_tf")
    rng = np.random.default_rng(0)
    for shape, scale in (((3, 5, 8), 1.0), ((4, 16), 3.0), ((2, 6), 1e-3)):
        x = (rng.normal(size=shape) * scale).astype(np.float32)
        w = rng.normal(size=shape[-1]).astype(np.float32)
        b = rng.normal(size=shape[-1]).astype(np.float32)
        got = fn(tf.constant(x), tf.constant(w), tf.constant(b))
        if not isinstance(got, (tf.Tensor, tf.Variable)):
            raise Fail(f"layer_norm_tf should return a tf.Tensor, not {type(got).__name__}")
        want = F.layer_norm(torch.from_numpy(x), (shape[-1],), torch.from_numpy(w),
                            torch.from_numpy(b), 1e-5).numpy()
        close(got.numpy(), want, 1e-4, f"inputs of shape {shape} and scale {scale:g}, "
              "against torch.nn.functional.layer_norm")


@exercise(EXERCISES, "linear-to-dense", "code", 2, "a torch Linear's weights into a Keras Dense",
          hint="the kernel is weight.T (in, out); the bias is unchanged")
def _linear_to_dense(ns: dict) -> None:
    import keras
    import torch

    fn = need(ns, "linear_to_dense")
    torch.manual_seed(0)
    lin = torch.nn.Linear(7, 5)
    dense = keras.layers.Dense(5)
    dense.build((None, 7))
    try:
        dense.set_weights(fn(lin.weight.detach().numpy(), lin.bias.detach().numpy()))
    except ValueError as e:
        raise Fail(f"Dense.set_weights refused your arrays: {e}") from None
    x = np.random.default_rng(0).normal(size=(3, 7)).astype(np.float32)
    with torch.no_grad():
        want = lin(torch.from_numpy(x)).numpy()
    close(np.asarray(dense(x)), want, 1e-5, "the Dense output against the Linear output")


@exercise(EXERCISES, "clip-like-tf", "code", 2,
          "TensorFlow's clip_by_global_norm written in PyTorch",
          hint="norm = sqrt(sum of all squared entries of all grads); multiply each by "
               "clip_norm / max(norm, clip_norm)")
def _clip(ns: dict) -> None:
    import tensorflow as tf
    import torch

    fn = need(ns, "clip_by_global_norm_torch")
    rng = np.random.default_rng(0)
    for scale, c in ((1.0, 1.0), (0.01, 1.0), (5.0, 0.5)):
        grads = [rng.normal(size=s).astype(np.float32) * scale for s in ((3, 4), (4,), (2, 2))]
        got = fn([torch.from_numpy(g.copy()) for g in grads], c)
        want, _ = tf.clip_by_global_norm([tf.constant(g) for g in grads], c)
        if len(got) != len(grads):
            raise Fail(f"expected {len(grads)} clipped tensors, got {len(got)}")
        for i, (g, w) in enumerate(zip(got, want)):
            if not isinstance(g, torch.Tensor):
                raise Fail(f"gradient {i} should be a torch.Tensor, not {type(g).__name__}")
            close(g.detach().numpy(), w.numpy(), 1e-6,
                  f"gradient {i} (scale {scale:g}, clip_norm {c:g}) against tf.clip_by_global_norm")


@exercise(EXERCISES, "predict-params", "predict", 1, "predict the built-in GPT's parameter count",
          hint="wte 512 x 64 once (tied); per block 2 LayerNorms of 128, c_attn 64*192+192, "
               "c_proj 64*64+64, MLP 64*256+256 and 256*64+64; plus ln_f 128")
def _predict_params(ns: dict) -> None:
    from dataclasses import replace

    from lm_torch.model import GPT
    from lm_torch.pretrain import BUILTIN

    got = number(ns, "gpt_params")
    want = GPT(replace(BUILTIN.model, vocab_size=512)).num_params()
    if got != want:
        raise Fail(f"gpt_params = {got:,.0f}; GPT.num_params() says otherwise")


open_question(EXERCISES, "which-check", "which test catches a dropped transpose, and why "
              "square weights are the dangerous ones")
