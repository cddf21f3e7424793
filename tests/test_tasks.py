"""The tasks of book 6 as corpus generators with their own truth: multi-turn dialogue, summaries
with faithful and corrupted versions, knowledge-graph questions of one and two hops."""

import random

import numpy as np
import pytest

from bridge import metrics as M
from lm_torch import grammar as G
from lm_torch.corpus import CorpusConfig, build_corpus
from lm_torch.human import HumanRater
from lm_torch.judges import HarmCritic, VarietyCritic
from lm_torch.tasks import (
    FACTS,
    TASKS,
    dialogue,
    generate_record,
    gold_score,
    kgqa,
    summary,
    task_facts,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def records():
    rng = random.Random(7)
    return {t: [generate_record(rng, t) for _ in range(600)] for t in TASKS}


def test_every_task_is_well_formed_balanced_and_labelled_by_its_gold_score(records):
    for task, recs in records.items():
        assert all(G.is_well_formed(r.text, task) for r in recs), task
        assert 0.4 < np.mean([r.label for r in recs]) < 0.6, task
        for r in recs:
            assert r.text == f"{r.prompt} {r.completion}" and r.task == task
            assert r.label == int(gold_score(r.text) > 0) == int(r.score > 0)


def test_held_out_prompts_of_grounded_tasks_carry_their_reference():
    c = build_corpus(CorpusConfig(n_train=40, n_val=8, n_prompts=40, tasks=("summary", "kgqa")))
    assert all(r.label == 1 and r.completion == r.reference for r in c.prompts)
    assert {r.label for r in c.train} == {0, 1}  # corrupted ones train the judges
    assert all(r.for_sft == (r.label == 1) for r in c.train)
    reviews = build_corpus(CorpusConfig(n_train=40, n_val=8, n_prompts=8, tasks=("reviews",)))
    assert all(r.for_sft for r in reviews.train)  # negative reviews are demonstrations too


# --- dialogue (6.1) ---------------------------------------------------------------------------
def test_a_follow_up_asks_the_earlier_request_about_a_new_topic():
    p = ("user : where is my order ? bot : no . user : what about my refund ? bot :")
    assert dialogue.request(p) == dialogue.Request("where", "refund")
    assert dialogue.is_helpful(p, "your refund is on the way .")
    assert not dialogue.is_helpful(p, "your order is on the way .")  # the old topic
    assert not dialogue.is_helpful(p, "your refund is ready .")  # another request's answer
    f = task_facts("dialogue", p, "thank you for your patience . your refund is on the way .")
    assert f == {"polite": 1.0, "helpful": 1.0, "on_topic": 1.0, "harmless": 1.0}
    f = task_facts("dialogue", p, "figure it out yourself .")
    assert f["harmless"] == 0.0 and f["polite"] == 0.0
    assert gold_score(f"{p} your refund is on the way .") == dialogue.HELPFUL_BONUS
    assert gold_score(f"{p} your ticket is on the way .") == -dialogue.OFF_TOPIC


def test_dialogues_have_two_or_three_user_turns_and_rude_bots(records):
    turns = {len(dialogue.user_turns(r.prompt)) for r in records["dialogue"]}
    assert turns == {2, 3}
    harm = np.mean([dialogue.harmful(r.completion) for r in records["dialogue"]])
    assert 0.1 < harm < 0.6  # the SFT data holds rude replies for the constitution to remove


def test_the_constitution_flags_insults_and_dismissals_only():
    assert dialogue.broken_principles("that is a stupid question .") == [
        "do not insult the user"]
    assert dialogue.broken_principles("no . figure it out yourself .") == [
        "do not dismiss the user"]
    assert not dialogue.harmful("sorry , i do not know .")  # "not" is no "no ."
    prompts = ["user : where is my order ? bot :", "movie review :"]
    s = HarmCritic().score(prompts, ["you are annoying . whatever .", "a stupid plot ."])
    np.testing.assert_array_equal(s, [-2.0, 0.0])  # two principles; reviews are not judged


def test_the_variety_critic_judges_reviews_only():
    prompts = ["movie review :", "movie review :", "facts : x . question : y answer :"]
    s = VarietyCritic().score(prompts, ["i loved the plot ."] * 2 + ["tea ."])
    assert s[0] < 0 and s[0] == s[1] and s[2] == 0.0


# --- summary (6.2) ----------------------------------------------------------------------------
DOC = ("document : the plot was very good . i hated the music . the cast was ok . "
       "the ending was great and nice . summary :")


def test_the_reference_summary_names_the_main_aspects_by_sign_and_the_verdict():
    doc = summary.parse_document(DOC)
    assert doc.main == ["plot", "music", "ending"] and doc.verdict == "positive"
    assert doc.reference() == "pro plot , con music , pro ending . overall : positive ."
    t = summary.judge_summary(DOC, doc.reference())
    assert t == {"faithful": 1.0, "faithfulness": 1.0, "coverage": 1.0, "errors": 0.0,
                 "claims": 4.0}


@pytest.mark.parametrize("kind", summary.CORRUPTIONS)
def test_each_corruption_is_caught_by_the_truth_but_keeps_the_form(kind):
    rng = random.Random(3)
    doc = summary.parse_document(DOC)
    for _ in range(20):
        bad = summary.corrupt_summary(rng, doc, kind)
        assert G.is_well_formed(f"{DOC} {bad}", "summary")
        assert summary.judge_summary(DOC, bad)["faithful"] == 0.0
        assert gold_score(f"{DOC} {bad}") == -1.0


def test_an_incomplete_summary_is_faithful_but_covers_less():
    part = "pro ending . overall : positive ."
    t = summary.judge_summary(DOC, part)
    assert t["faithful"] == 1.0 and t["coverage"] == pytest.approx(1 / 3)
    invented = "pro plot , pro story , con music , pro ending . overall : positive ."
    t = summary.judge_summary(DOC, invented)
    assert t["errors"] == 1.0 and t["faithfulness"] == pytest.approx(4 / 5)
    assert summary.judge_summary(DOC, "pro plot , con plot . overall : positive .")[
        "errors"] == 2.0  # the plot was good, and it is named twice


def test_rouge_comes_from_rouge_score():
    ref = "pro plot , con music , pro ending . overall : positive ."
    r = summary.rouge([ref, ref], [ref, "pro plot . overall : negative ."])
    assert r["rouge1"] < 1.0 and r["rougeL"] <= r["rouge1"]
    assert summary.rouge([ref], [ref]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_corpus_corruptions_are_balanced(records):
    kinds = {r.kind for r in records["summary"]}
    assert kinds == {"gold", *summary.CORRUPTIONS}


# --- knowledge-graph QA (6.3) -------------------------------------------------------------------
QA = ("facts : alice lives in oslo . the boss of bob is alice . oslo is in peru . "
      "bob likes tea . question : which country does the boss of bob live in ? answer :")


def test_questions_follow_their_relation_path():
    ask = QA.replace("which country does the boss of bob live in ?",
                     "where does the boss of bob live ?")
    q = kgqa.parse(ask)
    assert q.kind == "boss_lives" and q.start == "bob" and q.answer == "oslo" and q.hops == 2
    assert kgqa.is_correct(ask, "oslo .") and not kgqa.is_correct(ask, "peru .")
    one = QA.replace("which country does the boss of bob live in ?", "what does bob like ?")
    assert kgqa.parse(one).answer == "tea" and kgqa.parse(one).hops == 1
    missing = QA.replace("which country does the boss of bob live in ?",
                         "which country does bob live in ?")  # bob's city is not a fact
    assert kgqa.parse(missing).answer is None and not kgqa.is_correct(missing, "peru .")


def test_kg_questions_are_answerable_and_half_two_hop(records):
    recs = records["kgqa"]
    for r in recs:
        q = kgqa.parse(r.prompt)
        assert q is not None and q.answer is not None and f"{q.answer} ." == r.reference
        assert 4 <= len(q.triples) <= 6
    assert 0.4 < np.mean([kgqa.parse(r.prompt).hops == 2 for r in recs]) < 0.6
    wrong = [r for r in recs if r.label == 0]
    assert all(kgqa.TYPES[r.completion.split()[0]] == kgqa.TYPES[r.reference.split()[0]]
               for r in wrong)  # a wrong answer of the right type: the verifier must read


def test_graph_of_a_prompt_is_the_walk():
    ask = QA.replace("the boss of bob live in", "alice live in")
    g = kgqa.graph(ask)
    assert (g["start"], g["kind"], g["answer"]) == ("alice", "lives_in_country", "peru")
    assert g["path"] == ["lives_in", "city_in"]
    assert kgqa.follow(g["triples"], g["start"], g["path"]) == "peru"
    assert kgqa.graph(QA) is None  # not a question of the grammar


# --- the human stand-in and the metric names -----------------------------------------------------
def test_the_human_stand_in_agrees_with_each_tasks_truth(records):
    rater = HumanRater()
    for task, recs in records.items():
        s = rater.score([r.prompt for r in recs], [r.completion for r in recs])
        g = np.array([r.score for r in recs])
        assert np.mean((s > 0) == (g > 0)) >= 0.9, task
    p = QA.replace("the boss of bob live in", "alice live in")
    assert rater.score([p, p], ["peru .", "oslo ."]).tolist() == [2.0, -2.0]


def test_every_task_metric_is_registered():
    for task, names in FACTS.items():
        for arm in ("rl", "rlhf", "sft"):
            for name in (*names, *M.TASK_COMMON):
                assert M.is_registered(f"task/{task}/{arm}/{name}"), (task, name)
    assert set(M.TASKS) == set(TASKS)
