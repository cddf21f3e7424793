"""The built-in language: a small context-free grammar over a closed lexicon (the *form*).

The corpus of this project is generated, not downloaded, so that it knows the truth about its own
language (book 2.1.1 needs a language; 4.3 needs a truth to measure AI feedback against):

* ``GRAMMAR`` is a finite, non-recursive context-free grammar with one start symbol per task
  (``TASKS``). :func:`is_well_formed` compiles it into one regular expression per start symbol,
  so it accepts exactly the grammar's sentences: the *form* of a text, never its meaning.
  Whether a summary is faithful, an answer correct or a reply helpful is the business of the
  task modules (:mod:`lm_torch.tasks`), which generate the documents and know their truth.
* ``LEXICON`` gives each polar word a graded value for one aspect (sentiment or politeness);
  ``MODIFIERS`` scale the next word (``very good`` = 1.5 x ``good``, ``not good`` = -0.5 x
  ``good``). :func:`lexicon_score` sums them (book 4.3.1's f: the signal of the language).

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
    "NAME": ("alice", "bob", "carol", "dave", "erin", "frank", "grace"),
    "CITY": ("paris", "rome", "oslo", "lima", "cairo", "tokyo"),
    "COUNTRY": ("france", "italy", "norway", "peru", "egypt", "japan"),
    "THING": ("tea", "jazz", "chess", "cats", "rain", "maps"),
    "VERDICT": ("positive", "negative"),
    "SIDE": ("pro", "con"),
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


def _upto(symbol: str, lo: int, hi: int) -> tuple[tuple[str, ...], ...]:
    """``lo`` to ``hi`` copies of ``symbol`` (repetition spelt out: the grammar stays finite)."""
    return tuple((symbol,) * k for k in range(lo, hi + 1))


def _items(item: str, most: int) -> tuple[tuple[str, ...], ...]:
    """I | I , I | I , I , I | ... (1 to ``most`` items, comma-separated)."""
    return tuple(tuple(x for i in range(k) for x in ((",", item) if i else (item,)))
                 for k in range(1, most + 1))


# --- the grammar -----------------------------------------------------------------------------
# A production is a tuple of symbols; a symbol is a nonterminal (upper case) or a terminal string
# of one or more words.
GRAMMAR: dict[str, tuple[tuple[str, ...], ...]] = {
    # reviews (book 2.1, 5.3): 1 to 3 sentences about a movie or a product
    "REVIEW": (("MOVIE_REVIEW",), ("PRODUCT_REVIEW",)),
    "MOVIE_REVIEW": (("movie review :", "MBODY"),),
    "PRODUCT_REVIEW": (("product review :", "PBODY"),),
    "MBODY": _upto("MS", 1, 3),
    "PBODY": _upto("PS", 1, 3),
    "MS": (("the", "MNOUN", "BE", "QUAL", "."),
           ("i", "OPINION", "the", "MNOUN", "."),
           ("the", "MNOUN", "BE", "QUAL", "and", "QUAL", ".")),
    "PS": (("the", "PNOUN", "BE", "QUAL", "."),
           ("i", "OPINION", "the", "PNOUN", "."),
           ("the", "PNOUN", "BE", "QUAL", "and", "QUAL", ".")),
    "QUAL": (("ADJ",), ("INT", "ADJ")),
    # book 6.1: a customer-service dialogue of 2 or 3 user turns, the bot answering each
    "DIALOGUE": (("TURN", "FTURN"), ("TURN", "FTURN", "FTURN")),
    "TURN": (("user :", "REQUEST", "bot :", "RESPONSE"),),
    "FTURN": (("user :", "FOLLOWUP", "bot :", "RESPONSE"),),
    "REQUEST": (("can you help me with my", "DNOUN", "?"),
                ("please tell me about my", "DNOUN", "."),
                ("where is my", "DNOUN", "?"),
                ("i need help with my", "DNOUN", ".")),
    "FOLLOWUP": (("REQUEST",), ("what about my", "DNOUN", "?"),
                 ("thank you . what about my", "DNOUN", "?")),
    "RESPONSE": (("RS",), ("RS", "RS")),
    "RS": (("sure , i am", "GLAD", "to help with your", "DNOUN", "."),
           ("your", "DNOUN", "is ready ."),
           ("your", "DNOUN", "is on the way ."),
           ("i will fix your", "DNOUN", "now ."),
           ("thank you for your patience .",),
           ("sorry , i do not know .",),
           ("please wait a moment .",),
           ("figure it out yourself .",),
           ("that is a stupid question .",),
           ("stop asking me about your", "DNOUN", "."),
           ("no .",),
           ("whatever .",),
           ("you are annoying .",)),
    # book 6.2: a document of 3 to 6 sentences, one aspect each, and its summary
    "SUMMARY_DOC": (("document :", "SMBODY", "summary :", "MSUMMARY"),
                    ("document :", "SPBODY", "summary :", "PSUMMARY")),
    "SMBODY": _upto("MS", 3, 6),
    "SPBODY": _upto("PS", 3, 6),
    "MSUMMARY": (("MITEMS", ". overall :", "VERDICT", "."),),
    "PSUMMARY": (("PITEMS", ". overall :", "VERDICT", "."),),
    "MITEMS": _items("MITEM", 7),
    "PITEMS": _items("PITEM", 7),
    "MITEM": (("SIDE", "MNOUN"),),
    "PITEM": (("SIDE", "PNOUN"),),
    # book 6.3: the facts of a small knowledge graph, a one- or two-hop question, an answer
    "KGQA": (("facts :", "FACTS", "question :", "QUESTION", "answer :", "ENTITY", "."),),
    "FACTS": _upto("FACT", 3, 7),
    "FACT": (("NAME", "lives in", "CITY", "."), ("NAME", "likes", "THING", "."),
             ("the boss of", "NAME", "is", "NAME", "."), ("CITY", "is in", "COUNTRY", ".")),
    "QUESTION": (("where does", "NAME", "live ?"), ("what does", "NAME", "like ?"),
                 ("who is the boss of", "NAME", "?"), ("which country is", "CITY", "in ?"),
                 ("which country does", "NAME", "live in ?"),
                 ("what does the boss of", "NAME", "like ?"),
                 ("where does the boss of", "NAME", "live ?")),
    "ENTITY": (("NAME",), ("CITY",), ("COUNTRY",), ("THING",)),
}

#: The start symbol of each task of the corpus, and the aspect its lexicon scorer grades.
TASKS: dict[str, tuple[str, str]] = {
    "reviews": ("REVIEW", "sentiment"),
    "dialogue": ("DIALOGUE", "politeness"),
    "summary": ("SUMMARY_DOC", "faithfulness"),
    "kgqa": ("KGQA", "correctness"),
}
#: Aspects graded by meaning, not by a lexicon (the task modules know the truth).
GROUNDED = {"faithfulness", "correctness"}

#: Where a document splits into prompt and completion (SFT, RL prompts): after the *last*
#: occurrence of this marker (a dialogue's completion is its last bot turn).
COMPLETION_AFTER: dict[str, str] = {"reviews": ":", "dialogue": "bot :", "summary": "summary :",
                                     "kgqa": "answer :"}
#: How a document of each task begins.
HEADERS: dict[str, tuple[str, ...]] = {"reviews": ("movie review :", "product review :"),
                                       "dialogue": ("user :",), "summary": ("document :",),
                                       "kgqa": ("facts :",)}


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

    Form only: ``summary : pros : plot ...`` is well-formed whether or not the plot was good.
    The text must be normalised: single spaces, no leading or trailing space.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    task = task or task_of(text)
    return task is not None and _compiled(task).fullmatch(text) is not None


def task_of(text: str) -> str | None:
    """The task whose header opens ``text``, or None."""
    for task, headers in HEADERS.items():
        if text.startswith(headers):
            return task
    return None


def lexicon_score(text: str, aspect: str) -> float:
    """The summed lexicon value of ``text`` for ``aspect`` (book 4.3.1: the signal f_t).

    Sum over words of their lexicon value; a modifier multiplies the value of the next word
    (``extremely good`` = 2.0, ``not great`` = -1.0). Words outside the lexicon count 0. Works
    on any text, well-formed or not.
    """
    if aspect not in LEXICON:
        raise ValueError(f"unknown aspect {aspect!r}; expected one of {sorted(LEXICON)}")
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
