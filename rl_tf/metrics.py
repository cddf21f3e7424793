"""Metric names, defined once (Spinning Up's twins logged different things under one name).

Every trainer, the CLI and TensorBoard use these keys; tests check that they are logged.
"""

EPISODIC_RETURN = "charts/episodic_return"  #: undiscounted return of finished training episodes
EPISODIC_LENGTH = "charts/episodic_length"
EVAL_RETURN = "charts/eval_return"  #: mean return of deterministic evaluation episodes
LOSS_POLICY = "losses/policy"
LOSS_VALUE = "losses/value"
LOSS_ENTROPY = "losses/entropy"  #: mean policy entropy (nats) of the update batch
APPROX_KL = "policy/approx_kl"  #: k3 estimate of KL(pi_old || pi_new) over the update batch
CLIPFRAC = "policy/clipfrac"  #: share of samples whose ratio left [1 - clip, 1 + clip]
ENTROPY_COEF = "policy/entropy_coef"
LEARNING_RATE = "charts/learning_rate"
SPS = "charts/steps_per_second"

ALL = (EPISODIC_RETURN, EPISODIC_LENGTH, EVAL_RETURN, LOSS_POLICY, LOSS_VALUE, LOSS_ENTROPY,
       APPROX_KL, CLIPFRAC, ENTROPY_COEF, LEARNING_RATE, SPS)
