"""NumPy <-> TensorFlow at the bridge (the TF half of DESIGN.md's conversion helpers).

``tf.convert_to_tensor`` on a C-contiguous NumPy array of a TF dtype hands the buffer to TF;
``Tensor.numpy()`` on CPU returns a view of TF's buffer where it can. Both stay NumPy at the
border, so ``rl_tf`` never needs torch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def to_tensor(a: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(np.ascontiguousarray(a))


def to_numpy(t: tf.Tensor) -> np.ndarray:
    return t.numpy()
