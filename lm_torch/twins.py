"""PyTorch halves of the formula-level twins shown in notebook 05 (d2l-style: the same names,
only the framework calls change) -- re-exported from the modules that run, so what the
notebook and ``tests/test_twins.py`` compare is production code:

* ``attention``: ``lm_torch.model.attention_math``, book 4.1.2's softmax(QK^T / sqrt(d_k)) V;
* ``reinforce_loss``: ``lm_torch.policy.reinforce_loss``, book 4.2.3's -mean log pi(a|s) A.

Their TensorFlow halves are in ``rl_tf/twins.py``; the whole-component twins (the GPT, the
policy and its trainer) are ``rl_tf/gpt.py`` and ``lm_torch/policy.py``.
"""

from .model import attention_math as attention
from .policy import reinforce_loss

__all__ = ["attention", "reinforce_loss"]
