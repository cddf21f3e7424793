"""The knowledge-graph question-answering task (book 6.3): the facts of a small graph, a one- or
two-hop question, an answer.

    facts : alice lives in oslo . the boss of bob is alice . oslo is in peru . bob likes tea .
    question : which country does the boss of ... / which country does alice live in ?
    answer : peru .

Each prompt is its own small world: two or three people, the city each lives in, the thing each
likes, each one's boss (another of them), and the country of each city -- four functional
relations (``RELATIONS``). The prompt shows 4 to 6 of these facts, always the ones the question
needs. Questions follow one relation (``where does alice live ?``) or two (``which country does
alice live in ?`` = lives_in then city_in). The answer is correct when it is the entity the
path reaches (exact match); the corpus also holds wrong answers (label 0: another entity of the
answer's type) so that an AI verifier can be trained. :func:`graph` gives the walk of book
6.3.2 -- triples, start entity, question kind -- in plain Python for ``rl_tf.kg_walk``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .. import grammar as G
from .base import Record, split_prompt

NAME = "kgqa"
RELATIONS = ("lives_in", "likes", "boss", "city_in")
FACT_TEXT = {"lives_in": "{} lives in {} .", "likes": "{} likes {} .",
             "boss": "the boss of {} is {} .", "city_in": "{} is in {} ."}
#: question kind -> (how it is asked, the relations it follows from the asked entity)
QUESTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "where": ("where does {} live ?", ("lives_in",)),
    "likes": ("what does {} like ?", ("likes",)),
    "boss": ("who is the boss of {} ?", ("boss",)),
    "country": ("which country is {} in ?", ("city_in",)),
    "lives_in_country": ("which country does {} live in ?", ("lives_in", "city_in")),
    "boss_likes": ("what does the boss of {} like ?", ("boss", "likes")),
    "boss_lives": ("where does the boss of {} live ?", ("boss", "lives_in")),
}
#: entity type of each word that can be an entity
TYPES = {**{w: "person" for w in G.WORDS["NAME"]}, **{w: "city" for w in G.WORDS["CITY"]},
         **{w: "country" for w in G.WORDS["COUNTRY"]}, **{w: "thing" for w in G.WORDS["THING"]}}
_FACT = [(rel, re.compile(re.escape(t).replace(r"\{\}", r"(\w+)"))) for rel, t in
         FACT_TEXT.items()]
_QUESTION = [(kind, re.compile(re.escape(t).replace(r"\{\}", r"(\w+)")))
             for kind, (t, _) in QUESTIONS.items()]


@dataclass(frozen=True)
class Question:
    """A parsed prompt: its facts as (head, relation, tail) triples, the question's kind and
    asked entity, and the answer the facts give (None if a fact on the path is missing)."""

    triples: tuple[tuple[str, str, str], ...]
    kind: str
    start: str
    answer: str | None

    @property
    def hops(self) -> int:
        return len(QUESTIONS[self.kind][1])


def follow(triples, start: str, path) -> str | None:
    """Where the relations ``path`` lead from ``start`` (None at a missing fact)."""
    node = start
    for rel in path:
        node = next((t for h, r, t in triples if h == node and r == rel), None)
        if node is None:
            return None
    return node


def parse(prompt: str) -> Question | None:
    """The facts and question of a kgqa prompt (``facts : ... answer :``), or None."""
    m = re.fullmatch(r"facts : (.+ \.) question : (.+) answer :", prompt)
    if not m:
        return None
    triples = []
    for fact in (f.strip() + " ." for f in m.group(1).split(" .") if f.strip()):
        hit = next(((rel, x.fullmatch(fact)) for rel, x in _FACT if x.fullmatch(fact)), None)
        if hit is None:
            return None
        triples.append((hit[1].group(1), hit[0], hit[1].group(2)))
    q = next(((kind, x.fullmatch(m.group(2))) for kind, x in _QUESTION
              if x.fullmatch(m.group(2))), None)
    if q is None:
        return None
    kind, start = q[0], q[1].group(1)
    return Question(tuple(triples), kind, start, follow(triples, start, QUESTIONS[kind][1]))


def answer_entity(completion: str) -> str | None:
    """The entity of an answer completion ``E .`` (None for any other text)."""
    words = completion.split()
    return words[0] if len(words) == 2 and words[1] == "." and words[0] in TYPES else None


def is_correct(prompt: str, completion: str) -> bool:
    q = parse(prompt)
    return q is not None and q.answer is not None and answer_entity(completion) == q.answer


def facts(prompt: str, completion: str) -> dict[str, float]:
    """The task's metrics of one answer: exact_match, and hops (1 or 2) to split it by."""
    q = parse(prompt)
    return {"exact_match": float(is_correct(prompt, completion)),
            "hops": float(q.hops if q else 0)}


def gold(prompt: str, completion: str) -> float:
    """+1 for the correct answer, -1 otherwise (the verifier's target)."""
    return 1.0 if is_correct(prompt, completion) else -1.0


def graph(prompt: str) -> dict | None:
    """The prompt as a graph to walk (book 6.3.2): triples, start, kind, answer, path."""
    q = parse(prompt)
    if q is None or q.answer is None:
        return None
    return {"triples": [list(t) for t in q.triples], "start": q.start, "kind": q.kind,
            "answer": q.answer, "path": list(QUESTIONS[q.kind][1])}


def _world(rng: random.Random) -> list[tuple[str, str, str]]:
    people = rng.sample(G.WORDS["NAME"], rng.choice((2, 3)))
    cities = rng.sample(G.WORDS["CITY"], 2)
    countries = rng.sample(G.WORDS["COUNTRY"], 2)
    triples = [(c, "city_in", k) for c, k in zip(cities, countries)]
    for p in people:
        triples += [(p, "lives_in", rng.choice(cities)),
                    (p, "likes", rng.choice(G.WORDS["THING"])),
                    (p, "boss", rng.choice([q for q in people if q != p]))]
    return triples


def generate(rng: random.Random, corrupt: bool = True) -> Record:
    """A world, a question (one- or two-hop, half each) and its answer (label 1), or -- half
    the time, when ``corrupt`` -- a wrong answer of the same type (label 0)."""
    triples = _world(rng)
    hops = rng.choice((1, 2))
    kind = rng.choice([k for k, (_, path) in QUESTIONS.items() if len(path) == hops])
    path = QUESTIONS[kind][1]
    first = "city" if path[0] == "city_in" else "person"
    start = rng.choice(sorted({h for h, _, _ in triples if TYPES[h] == first}))
    needed, node = [], start
    for rel in path:
        fact = next(t for t in triples if t[0] == node and t[1] == rel)
        needed.append(fact)
        node = fact[2]
    others = [t for t in triples if t not in needed]
    shown = needed + rng.sample(others, rng.randint(4, 6) - len(needed))
    rng.shuffle(shown)
    prompt = ("facts : " + " ".join(FACT_TEXT[r].format(h, t) for h, r, t in shown)
              + f" question : {QUESTIONS[kind][0].format(start)} answer :")
    answer, kind_label = node, f"{'one' if hops == 1 else 'two'}_hop"
    said = answer
    if corrupt and rng.random() < 0.5:
        seen = sorted({e for h, _, t in shown for e in (h, t)
                       if TYPES[e] == TYPES[answer] and e != answer})
        pool = seen or [e for e, ty in TYPES.items() if ty == TYPES[answer] and e != answer]
        said = rng.choice(pool)
    text = f"{prompt} {said} ."
    score = gold(*split_prompt(text, NAME))
    return Record(NAME, text, int(score > 0), score, reference=f"{answer} .",
                  kind=kind_label if said == answer else f"{kind_label}_wrong")
