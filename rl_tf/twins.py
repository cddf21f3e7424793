"""TensorFlow halves of the formula-level twins shown in notebook 05, re-exported from the
modules that run (``tests/test_twins.py`` holds them to their PyTorch halves, to 1e-5):

* ``attention``: ``rl_tf.gpt.attention_math``, book 4.1.2's softmax(QK^T / sqrt(d_k)) V;
* ``reinforce_loss``: ``rl_tf.losses.reinforce_loss``, book 4.2.3's -mean log pi(a|s) A;
* ``gae``: ``rl_tf.returns.gae_tf``, book 4.2.2's GAE(lambda), beside its NumPy reference.
"""

from .gpt import attention_math as attention
from .losses import reinforce_loss
from .returns import gae_numpy
from .returns import gae_tf as gae

__all__ = ["attention", "reinforce_loss", "gae", "gae_numpy"]
