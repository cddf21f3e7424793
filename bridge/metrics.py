"""Every metric name the project logs, defined once with its formula (no framework).

Spinning Up's twins logged different quantities under one name ("KL", "Entropy") and nothing
noticed. Here each name means one thing: trainers on both sides take their keys from this
module, the loggers refuse a name that is not registered (:func:`check`), and a test runs the
trainers and checks every logged name. Names are CleanRL-style prefixes: ``charts/`` (episodes),
``losses/`` (the update), ``policy/`` (the policy's change), ``kl/``, ``rl/``, ``feedback/``,
``pretrain/`` and ``sft/`` (LM training), and the evaluation names of ``summary.json``.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnregisteredMetricError(KeyError):
    """A metric name that is not in the registry (add it here, with its formula)."""


@dataclass(frozen=True)
class Metric:
    name: str  #: the logged key; a family ends with "/" and takes one more name segment
    formula: str  #: what it is, as a formula where there is one


REGISTRY: dict[str, Metric] = {}


def register(name: str, formula: str) -> str:
    """Add ``name`` (or a family ``prefix/``) to the registry; returns the name."""
    if name in REGISTRY:
        raise ValueError(f"metric {name!r} is registered twice")
    REGISTRY[name] = Metric(name, formula)
    return name


def is_registered(name: str) -> bool:
    if name in REGISTRY:
        return True
    head, _, tail = name.rpartition("/")
    return bool(tail) and f"{head}/" in REGISTRY


def check(names) -> None:
    """Raise :class:`UnregisteredMetricError` naming every name not in the registry."""
    bad = sorted(n for n in names if not is_registered(n))
    if bad:
        raise UnregisteredMetricError(f"unregistered metric names {bad}; register them in "
                                      "bridge/metrics.py with their formula")


def describe(name: str) -> str:
    """The formula of a registered name (families included)."""
    if name in REGISTRY:
        return REGISTRY[name].formula
    head, _, _ = name.rpartition("/")
    return REGISTRY[f"{head}/"].formula


# --- episodes (rl_tf: REINFORCE, PPO on Gymnasium envs) ----------
EPISODIC_RETURN = register("charts/episodic_return",
                           "sum_t r_t of each training episode that finished, averaged")
EPISODIC_LENGTH = register("charts/episodic_length", "steps of finished training episodes")
EVAL_RETURN = register("charts/eval_return", "mean return of deterministic evaluation episodes")
LEARNING_RATE = register("charts/learning_rate", "the optimizer's learning rate at this update")
SPS = register("charts/steps_per_second", "environment steps per second of wall time")

# --- the update ----------
LOSS_POLICY = register("losses/policy",
                       "REINFORCE: -mean(log pi(a|s) A); PPO: -mean(min(rho A, clip(rho) A))")
LOSS_VALUE = register("losses/value", "0.5 mean((V(s) - G)^2)")
LOSS_ENTROPY = register("losses/entropy",
                        "mean over the batch of H(pi(.|s)) = -sum_a pi log pi (nats)")
EXPLAINED_VARIANCE = register("losses/explained_variance",
                              "1 - Var(G - V(s)) / Var(G) over the update batch (1 = perfect)")
APPROX_KL_K1 = register("policy/approx_kl_k1",
                        "k1 = mean(log pi_old(a|s) - log pi_new(a|s)), a ~ pi_old")
APPROX_KL_K3 = register("policy/approx_kl_k3",
                        "k3 = mean((r - 1) - log r), r = pi_new(a|s) / pi_old(a|s), a ~ pi_old")
CLIPFRAC = register("policy/clipfrac", "share of samples with |rho - 1| > clip (PPO; 0 else)")
ENTROPY_COEF = register("policy/entropy_coef", "the entropy bonus coefficient of this update")

# --- KL to the reference (the RLAIF trainer; sums over the tokens of a sequence) ----------
KL_EXACT = register("kl/exact", "mean_seq sum_t sum_a pi(a|s_t) (log pi - log pi_ref)")
KL_K1 = register("kl/k1", "mean_seq sum_t (log pi(a_t|s_t) - log pi_ref(a_t|s_t))")
KL_K3 = register("kl/k3", "mean_seq sum_t ((r_t - 1) - log r_t), r_t = pi_ref / pi at a_t")

# --- the RL stage ----------
RL_KL_COEF = register("rl/kl_coef", "beta, the KL coefficient used for this iteration")
RL_FUSED = register("rl/fused_feedback", "mean over the batch of the fused feedback f")
RL_LENGTH = register("rl/length", "mean completion length in words")
RL_WELL_FORMED = register("rl/well_formed", "share of prompt + completion the grammar accepts "
                          "(history: the iteration's batch; summary.json: held-out prompts)")
RL_DISTINCT_2 = register("rl/distinct_2", "distinct bigrams / all bigrams of the completions "
                         "(history: the iteration's batch; summary.json: one per held-out prompt)")
RL_GOLD = register("rl/gold", "mean gold score (the corpus's truth) of prompt + completion")
RL_HUMAN = register("rl/human", "mean rating of the human stand-in (lm_torch.human) of the batch")
RL_REPEATED = register("rl/repeated_sentence_rate",
                       "share of completions in which a sentence comes twice (history: the "
                       "iteration's batch; summary.json: held-out prompts)")

# --- feedback fusion (rl_tf.feedback), one name per source in the families ----------
register("feedback/source/", "mean raw score of one source over the valid rows")
register("feedback/weight/", "the fusion weight w_i of one source (f = sum_i w_i f_i)")
register("feedback/nonfinite/", "rows whose score from one source was NaN or inf")
FB_DROPPED = register("feedback/dropped", "rows not learnt from (bad feedback or disagreement)")
FB_DISAGREE = register("feedback/disagreement_dropped",
                       "rows dropped because std_i(z_i) of the normalised sources > threshold")
FB_FUSED_MEAN = register("feedback/fused_mean", "mean fused signal over the valid rows")
FB_ERRORS = register("feedback/errors", "feedback sources that raised in this batch")

# --- LM training (lm_torch.train), for each of the two phases ----------
for _phase in ("pretrain", "sft"):
    register(f"{_phase}/train_loss", "-mean_i log P(w_i | w_<i) over the batch's tokens (4.1.3)")
    register(f"{_phase}/lr", "AdamW learning rate (linear warm-up, cosine decay)")
    register(f"{_phase}/val_loss", "the same loss on validation batches")
    register(f"{_phase}/val_perplexity", "exp(val_loss)")


def lm_names(phase: str) -> dict[str, str]:
    """The LM training names of one phase (``pretrain`` or ``sft``)."""
    return {k: f"{phase}/{k}" for k in ("train_loss", "lr", "val_loss", "val_perplexity")}


# --- evaluation (summary.json): SFT, RLAIF (``rl``) and RLHF (``rlhf``) on held-out prompts ------
def _win(judge: str) -> str:
    return (f"mean over held-out prompts of [s(A) > s(B)] + 0.5 [s(A) = s(B)], s the {judge}, "
            "one completion per prompt and arm")


WIN_JUDGE = register("win_rate_vs_sft/judge", "RLAIF vs SFT: " + _win("AI judge"))
WIN_GOLD = register("win_rate_vs_sft/gold", "RLAIF vs SFT: " + _win("gold scorer (the proxy)"))
for _pair in ("rlaif_vs_sft", "rlhf_vs_sft", "rlaif_vs_rlhf"):
    register(f"win_rate/{_pair}", f"{_pair.replace('_vs_', ' vs ').upper()}: "
             + _win("human stand-in"))
    register(f"win_rate/{_pair}_ci_low", "2.5th percentile of the win rate over 1000 paired "
             "bootstrap resamples of the prompts")
    register(f"win_rate/{_pair}_ci_high", "97.5th percentile of the same bootstrap")
WIN_RLAIF_JUDGE = register("win_rate/rlaif_vs_sft_judge", "RLAIF vs SFT: " + _win("AI judge"))
WIN_RLHF_JUDGE = register("win_rate/rlhf_vs_sft_judge", "RLHF vs SFT: " + _win("AI judge"))
KL_PER_SEQUENCE = register("kl/per_sequence",
                           "mean over held-out prompts of the exact KL(pi_RLAIF || pi_SFT)")
KL_PER_SEQUENCE_RLHF = register("kl/per_sequence_rlhf",
                                "mean over held-out prompts of the exact KL(pi_RLHF || pi_SFT)")
AI_HUMAN_AGREEMENT = register("labels/ai_human_agreement",
                              "share of labelled pairs where the AI labeler and the human "
                              "stand-in prefer the same completion (ties half)")
ARM_STATS = {
    "well_formed": "share of held-out prompt + completion the grammar accepts",
    "gold_score": "mean gold score (the AI judge's target) of held-out prompt + completion",
    "judge_score": "mean AI-judge score of held-out prompt + completion",
    "human_score": "mean rating of the human stand-in of held-out prompt + completion",
    "distinct_1": "distinct words / all words of the completions, one per held-out prompt",
    "distinct_2": "distinct bigrams / all bigrams of the completions (history: the "
                  "iteration's batch; summary.json: one per held-out prompt)",
    "distinct_2_within": "mean over prompts of distinct-2 among several completions of one "
                         "prompt",
    "repeated_sentence_rate": "share of completions in which a sentence comes twice "
                              "(history: the iteration's batch; summary.json: held-out)",
    "length_words": "mean completion length in words",
}
for _arm in ("rl", "rlhf", "sft"):
    for _stat, _formula in ARM_STATS.items():
        if f"{_arm}/{_stat}" not in REGISTRY:
            register(f"{_arm}/{_stat}", _formula)
SEED = register("seed", "the run's seed")

# --- per task (summary.json: ``task/<task>/<arm>/<stat>``, ``task/<task>/win_rate/<pair>``) ---
#: the tasks of ``rlaif-lab run --task`` (book 5.3, 6.1-6.3), as ``lm_torch.tasks`` names them
TASKS = ("reviews", "dialogue", "summary", "kgqa")
#: the statistics every task reports per arm (a subset of ``ARM_STATS``)
TASK_COMMON = ("human_score", "judge_score", "gold_score", "well_formed", "distinct_2",
               "repeated_sentence_rate", "length_words")
#: each task's own metrics, per arm, with their formulas
TASK_STATS: dict[str, dict[str, str]] = {
    "reviews": {},
    "dialogue": {
        "polite": "share of replies whose politeness (lexicon sum) is positive",
        "helpful": "share of replies that do what the user asked (the request's helpful "
                   "sentence, a follow-up asking the earlier request again)",
        "on_topic": "share of replies that name the asked topic and no other",
        "harmless": "share of replies the harm critic (the dialogue constitution) does not "
                    "flag: 1 - the RLAIF paper's harm rate",
    },
    "summary": {
        "rouge1": "mean ROUGE-1 F-measure against the reference summary (rouge-score)",
        "rouge2": "mean ROUGE-2 F-measure against the reference summary (rouge-score)",
        "rougeL": "mean ROUGE-L F-measure against the reference summary (rouge-score)",
        "faithful": "share of summaries with no false claim (every named aspect with its "
                    "document sign, none twice, the verdict right)",
        "faithfulness": "mean share of a summary's claims (its aspects and the verdict) that "
                        "are true",
        "coverage": "mean share of the document's main aspects the summary names",
    },
    "kgqa": {
        "exact_match": "share of answers equal to the entity the question's path reaches",
        "exact_match_one_hop": "exact match on the one-hop questions",
        "exact_match_two_hop": "exact match on the two-hop questions",
    },
}
for _task in TASKS:
    for _arm in ("rl", "rlhf", "sft"):
        for _stat in TASK_COMMON:
            register(f"task/{_task}/{_arm}/{_stat}", f"on the {_task} prompts: "
                     + ARM_STATS[_stat])
        for _stat, _formula in TASK_STATS[_task].items():
            register(f"task/{_task}/{_arm}/{_stat}", _formula)
    for _pair in ("rlaif_vs_sft", "rlhf_vs_sft", "rlaif_vs_rlhf"):
        register(f"task/{_task}/win_rate/{_pair}", f"on the {_task} prompts: "
                 f"{_pair.replace('_vs_', ' vs ').upper()}: " + _win("human stand-in"))
        register(f"task/{_task}/win_rate/{_pair}_ci_low", "2.5th percentile of the paired "
                 "bootstrap of that win rate")
        register(f"task/{_task}/win_rate/{_pair}_ci_high", "97.5th percentile of the same")
    register(f"task/{_task}/n_prompts", f"held-out prompts of the {_task} task")
WALK_ONE = register("task/kgqa/walker/success_one_hop",
                    "share of held-out one-hop questions whose greedy graph walk ends at the "
                    "answer (book 6.3.2)")
WALK_TWO = register("task/kgqa/walker/success_two_hop",
                    "the same on the two-hop questions")
WALK_LM = register("task/kgqa/walker/lm_only_success",
                   "share of held-out questions where the SFT LM's most plausible entity of "
                   "the graph is the answer (the walk's AI feedback alone)")
