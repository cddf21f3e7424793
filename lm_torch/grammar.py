"""The built-in language: a small context-free grammar over a closed lexicon.

The corpus of this project is generated, not downloaded, so that it knows the truth about its own
language (book 2.1.1 needs a language; 4.3 needs a truth to measure AI feedback against):

* ``GRAMMAR`` is a finite, non-recursive context-free grammar. The generator in
  :mod:`lm_torch.corpus` expands it; :func:`is_well_formed` compiles the *same* grammar into one
  regular expression per start symbol, so it accepts exactly the grammar's sentences.
* ``LEXICON`` gives each polar word a graded value for one aspect (sentiment or politeness);
  ``MODIFIERS`` scale the next word (``very good`` = 1.5 x ``good``, ``not good`` = -0.5 x
  ``good``). :func:`gold_score` sums them: the stand-in for a human rater.

Texts are lower-case words separated by single spaces; punctuation marks are words of their own.
"""

from __future__ import annotations

import functools
import re

# --- the lexicon -----------------------------------------------------------------------------
#: Lexical categories: nonterminal -> words. Polar categories have values in ``LEXICON``.
WORDS: dict[str, tuple[str, ...]] = {
    "MNOUN": ("plot", "acting", "music", "ending", "story", "cast", "dialogue", "soundtrack"),
    "PNOUN": ("battery", "screen", "price", "design", "sound", "keyboard", "camera", "case"),
    "ADJ": ("excellent", "wonderful", "amazing", "great", "good", "nice", "decent", "fine", "ok",
            "dull", "poor", "bad", "boring", "awful", "terrible"),
    "OPINION": ("loved", "enjoyed", "liked", "disliked", "hated"),
    "INT": ("very", "really", "extremely", "somewhat", "not"),
    "BE": ("was", "is"),
    "DNOUN": ("order", "account", "package", "refund", "password", "ticket", "booking"),
    "GLAD": ("glad", "happy"),
    "NAME": ("alice", "bob", "carol", "dave", "erin"),
    "THING": ("tea", "jazz", "chess", "cats", "rain", "maps"),
    "VERDICT": ("positive", "negative"),
}

#: Graded word values per aspect (book 4.3.1's f: the true feedback signal of the language).
LEXICON: dict[str, dict[str, float]] = {
    "sentiment": {
        "excellent": 3.0, "wonderful": 3.0, "amazing": 3.0, "great": 2.0, "good": 1.0,
        "nice": 1.0, "decent": 0.5, "fine": 0.5, "ok": 0.0, "dull": -1.0, "poor": -1.5,
        "bad": -1.5, "boring": -2.0, "awful": -3.0, "terrible": -3.0,
        "loved": 2.0, "enjoyed": 1.5, "liked": 1.0, "disliked": -1.0, "hated": -2.0,
    },
    "politeness": {
        "please": 1.0, "thank": 2.0, "glad": 1.5, "happy": 1.5, "sure": 1.0, "sorry": 0.5,
        "patience": 1.0, "stupid": -3.0, "whatever": -1.5, "yourself": -2.0, "stop": -1.0,
        "no": -1.0, "annoying": -2.0,
    },
}

#: Intensifiers and negation: they multiply the value of the word right after them.
MODIFIERS: dict[str, float] = {
    "very": 1.5, "really": 1.5, "extremely": 2.0, "somewhat": 0.5, "not": -0.5,
}

# --- the grammar -----------------------------------------------------------------------------
# A production is a tuple of symbols; a symbol is a nonterminal (upper case) or a terminal string
# of one or more words. Repetition (1 to 3 sentences) is spelt out, so the grammar stays finite.
GRAMMAR: dict[str, tuple[tuple[str, ...], ...]] = {
    "REVIEW": (("MOVIE_REVIEW",), ("PRODUCT_REVIEW",)),
    "MOVIE_REVIEW": (("movie review :", "MBODY"),),
    "PRODUCT_REVIEW": (("product review :", "PBODY"),),
    "MBODY": (("MS",), ("MS", "MS"), ("MS", "MS", "MS")),
    "PBODY": (("PS",), ("PS", "PS"), ("PS", "PS", "PS")),
    "MS": (("the", "MNOUN", "BE", "QUAL", "."),
           ("i", "OPINION", "the", "MNOUN", "."),
           ("the", "MNOUN", "BE", "QUAL", "and", "QUAL", ".")),
    "PS": (("the", "PNOUN", "BE", "QUAL", "."),
           ("i", "OPINION", "the", "PNOUN", "."),
           ("the", "PNOUN", "BE", "QUAL", "and", "QUAL", ".")),
    "QUAL": (("ADJ",), ("INT", "ADJ")),
    "DIALOGUE": (("user :", "REQUEST", "bot :", "RESPONSE"),),
    "REQUEST": (("can you help me with my", "DNOUN", "?"),
                ("please tell me about my", "DNOUN", "."),
                ("where is my", "DNOUN", "?"),
                ("i need help with my", "DNOUN", ".")),
    "RESPONSE": (("RS",), ("RS", "RS")),
    "RS": (("sure , i am", "GLAD", "to help with your", "DNOUN", "."),
           ("thank you for your patience .",),
           ("sorry , i do not know .",),
           ("please wait a moment .",),
           ("your", "DNOUN", "is on the way .",),
           ("figure it out yourself .",),
           ("that is a stupid question .",),
           ("stop asking me about your", "DNOUN", "."),
           ("no .",),
           ("whatever .",),
           ("you are annoying .",)),
    # book 6.2: a movie review and its one-line summary (faithful when the verdict is the
    # sign of the review's gold sentiment)
    "SUMMARY_DOC": (("document :", "MBODY", "summary : the review is", "VERDICT", "."),),
    # book 6.3: facts of a tiny knowledge graph and a question about them (correct when the
    # answer is the asked person's thing)
    "KGQA": (("facts :", "FACTS", "question : what does", "NAME", "like ? answer :", "THING",
              "."),),
    "FACTS": (("FACT",), ("FACT", "FACT"), ("FACT", "FACT", "FACT")),
    "FACT": (("NAME", "likes", "THING", "."),),
}

#: The start symbol of each task of the corpus, and the aspect its gold scorer grades.
TASKS: dict[str, tuple[str, str]] = {
    "review": ("REVIEW", "sentiment"),
    "dialogue": ("DIALOGUE", "politeness"),
    "summary": ("SUMMARY_DOC", "faithfulness"),
    "kgqa": ("KGQA", "correctness"),
}
#: Aspects graded by meaning, not by a lexicon: +1 when the text is faithful / correct, else -1.
GROUNDED = {"faithfulness", "correctness"}

#: Where a document splits into prompt and completion (SFT, RL prompts): after this word.
COMPLETION_AFTER: dict[str, str] = {"review": ":", "dialogue": "bot :", "summary": "summary :",
                                     "kgqa": "answer :"}


def is_nonterminal(symbol: str) -> bool:
    return symbol in GRAMMAR or symbol in WORDS


@functools.lru_cache(maxsize=None)
def _regex(symbol: str) -> str:
    """The regular expression (over space-joined words) of everything ``symbol`` derives."""
    if symbol in WORDS:
        return "(?:" + "|".join(re.escape(w) for w in WORDS[symbol]) + ")"
    if symbol in GRAMMAR:
        alts = [" ".join(_regex(s) for s in prod) for prod in GRAMMAR[symbol]]
        return "(?:" + "|".join(alts) + ")"
    return re.escape(symbol)  # a terminal string


@functools.lru_cache(maxsize=None)
def _compiled(task: str) -> re.Pattern[str]:
    start, _ = TASKS[task]
    return re.compile(_regex(start))


def is_well_formed(text: str, task: str | None = None) -> bool:
    """True exactly when ``text`` is a sentence of the grammar (of ``task``, or of any task).

    The text must be normalised: single spaces, no leading or trailing space.
    """
    tasks = [task] if task is not None else list(TASKS)
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r}; expected one of {sorted(TASKS)}")
        if _compiled(t).fullmatch(text) and (TASKS[t][1] not in GROUNDED or grounded(text)):
            return True
    return False


_SUMMARY = re.compile(r"document : (.*) summary : the review is (positive|negative) \.")
_KGQA = re.compile(r"facts : (.*) question : what does (\w+) like \? answer : (\w+) \.")


def grounded(text: str) -> bool:
    """The meaning check of the grounded tasks (book 6.2-6.3), beyond the grammar.

    summary: the verdict is the sign of the document's gold sentiment (never 0);
    kgqa: every person appears in one fact, the asked person is among them, and the answer is
    that person's thing.
    """
    m = _SUMMARY.fullmatch(text)
    if m:
        score = gold_score(m.group(1), "sentiment")
        return score != 0 and m.group(2) == ("positive" if score > 0 else "negative")
    m = _KGQA.fullmatch(text)
    if m:
        facts = [f.split() for f in m.group(1).split(" .") if f.strip()]
        likes = {f[0]: f[2] for f in facts if len(f) == 3 and f[1] == "likes"}
        return (len(likes) == len(facts) and m.group(2) in likes
                and likes[m.group(2)] == m.group(3))
    return False


def task_of(text: str) -> str | None:
    """The task whose header opens ``text`` (``review`` or ``dialogue``), or None."""
    if text.startswith(("movie review :", "product review :")):
        return "review"
    if text.startswith("user :"):
        return "dialogue"
    if text.startswith("document :"):
        return "summary"
    if text.startswith("facts :"):
        return "kgqa"
    return None


def gold_score(text: str, aspect: str | None = None) -> float:
    """The true, graded score of ``text`` for an aspect (book 4.3.1: the signal f_t).

    Sum over words of their lexicon value; a modifier multiplies the value of the next word
    (``extremely good`` = 2.0, ``not great`` = -1.0). Words outside the lexicon count 0. Works on
    any text, well-formed or not; evaluation reports well-formedness beside it, because a summed
    score can be raised by text that never stops (a known reward hack).
    """
    if aspect is None:
        task = task_of(text)
        aspect = TASKS[task][1] if task else "sentiment"
    if aspect in GROUNDED:
        return 1.0 if grounded(text) else -1.0
    if aspect not in LEXICON:
        raise ValueError(f"unknown aspect {aspect!r}; expected one of "
                         f"{sorted(LEXICON) + sorted(GROUNDED)}")
    values = LEXICON[aspect]
    total, scale = 0.0, 1.0
    for word in text.split():
        if word in MODIFIERS:
            scale *= MODIFIERS[word]
            continue
        total += scale * values.get(word, 0.0)
        scale = 1.0
    return total


def vocabulary() -> list[str]:
    """Every word of the language, sorted (terminal strings split into words)."""
    words: set[str] = set()
    for ws in WORDS.values():
        words.update(ws)
    for prods in GRAMMAR.values():
        for prod in prods:
            for sym in prod:
                if not is_nonterminal(sym):
                    words.update(sym.split())
    return sorted(words)
