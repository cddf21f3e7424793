"""Diversity of generated text (book 5.3; Kirk et al. 2023: RLHF lowers output diversity).

distinct-n = distinct n-grams / all n-grams (Li et al. 2016), over a set of completions: across
prompts (one completion each) or within a prompt (several completions of the same prompt,
averaged over prompts); the repeated-sentence rate is the share of completions in which some
sentence comes twice -- the cheapest way to game a summed-polarity reward.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lm_torch.human import sentences


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of ``texts`` (word level); 0 if there are none."""
    grams = [tuple(w[i: i + n]) for t in texts for w in [t.split()]
             for i in range(len(w) - n + 1)]
    return len(set(grams)) / max(len(grams), 1)


def distinct_within(groups: Sequence[Sequence[str]], n: int) -> float:
    """Mean over groups (the completions of one prompt) of their distinct-n."""
    return float(np.mean([distinct_n(g, n) for g in groups])) if groups else 0.0


def repeats_a_sentence(text: str) -> bool:
    """True if a sentence of ``text`` comes twice."""
    s = sentences(text.split())
    return len(s) != len(set(s))


def repeated_sentence_rate(texts: Sequence[str]) -> float:
    """Share of ``texts`` that repeat a sentence."""
    return float(np.mean([repeats_a_sentence(t) for t in texts])) if texts else 0.0
