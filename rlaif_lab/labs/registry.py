"""The course's labs, in teaching order: one entry per chapter notebook.

Adding a lab (docs/teaching.md, "How to add a lab"): tag the cells of its notebook
(``setup``, ``solution``), write its hidden tests in ``rlaif_lab/labs/checks/labNN.py``, and
add one ``Lab(...)`` here. The test suite then grades it like every other lab.
"""

from __future__ import annotations

from .spec import Lab

LABS: tuple[Lab, ...] = (
    Lab("01", "01_background.ipynb", "Background: the LM as an environment",
        ("score text with an n-gram model and compare its perplexity with the Transformer's",
         "name the state, action, reward and episode of the token MDP, and walk one episode",
         "compute a discounted return",
         "plug a reward of your own into the environment"),
        minutes=60, book="1.1-1.3"),
    Lab("02", "02_core_concepts.ipynb", "Core concepts: LM, MDP, values, exploration",
        ("compute log P(text) by the chain rule, stably (log_softmax)",
         "read self-attention's weights and its causal mask",
         "write a Bellman optimality backup and run value iteration",
         "compute the exact KL between two next-token distributions"),
        minutes=90, prerequisites=("01",), book="2.1-2.3"),
    Lab("03", "03_algorithms.ipynb", "Algorithms: the RLAIF loop, feedback fusion, updates",
        ("follow one iteration of the RLAIF loop: rollout, feedback, fusion, update",
         "weight noisy feedback sources by inverse variance; vote out outliers",
         "add a critic of your own to the constitution",
         "read PPO's clipped objective; see value iteration contract at rate gamma"),
        minutes=90, prerequisites=("02",), book="3.1-3.3"),
    Lab("04", "04_mathematics.ipynb", "The mathematics of chapter 4, checked numerically",
        ("check every formula of chapter 4 against the code that computes it",
         "implement the k3 estimator of KL and reward-to-go",
         "write book 4.3.2's fused policy-gradient loss in TensorFlow",
         "predict how averaging k noisy queries shrinks the variance"),
        minutes=90, prerequisites=("02",), book="4.1-4.3"),
    Lab("05", "05_listings.ipynb", "The book's listings: run, find the defects, fix them",
        ("run listings 5.1.1-5.2.2 as printed and name each defect",
         "fix the encoder with a causal mask and the evaluation loop of 5.1.2",
         "compare the listing's per-step update with reward-to-go REINFORCE at one budget",
         "read the 5.3 experiment: SFT vs RLAIF vs RLHF by a human stand-in"),
        minutes=120, prerequisites=("04",), book="5.1-5.3"),
    Lab("07", "07_tools.ipynb", "Tools: Gymnasium, Stable-Baselines3, benchmarks' metrics",
        ("relate BERT, GPT and T5 to the judge, the LM and the corpus's tasks",
         "write a Gymnasium wrapper and train SB3's PPO on the LM environment",
         "implement the metrics of SQuAD (token F1) and CNN/DailyMail (ROUGE-n)"),
        minutes=60, prerequisites=("01",), book="7.1-7.3"),
    Lab("08", "08_outlook.ipynb", "Outlook: scale, control, reward hacking, human-AI feedback",
        ("see loss fall with model size and well-formedness with temperature",
         "catch reward hacking with distinct-n, and write a reward that resists it",
         "fit Gao et al.'s over-optimisation curve",
         "see when routing unsure labels to a human helps"),
        minutes=75, prerequisites=("03",), book="8.1-8.3"),
    Lab("09", "09_faq.ipynb", "FAQ: training tips, tuning, feedback in practice",
        ("read learning curves for over- and under-fitting; stop early",
         "trade vocabulary size against sequence length; count the KV cache's savings",
         "cancel a labeler's position bias by asking in both orders"),
        minutes=60, prerequisites=("04",), book="9.1-9.3"),
    Lab("10", "10_frameworks.ipynb", "Frameworks side by side: PyTorch and TensorFlow",
        ("map PyTorch layers and defaults onto Keras 3 ones (layouts, epsilons, clipping)",
         "write the TensorFlow twin of a PyTorch function and check it on random inputs",
         "load Torch weights into Keras and show the logits agree to 1e-5"),
        minutes=75, prerequisites=("02", "05"), book="2.1.2, 4.1, 4.3.2, 5.1-5.2"),
)


def get_lab(number: str) -> Lab:
    """The lab numbered ``number`` ("4" and "04" both work); KeyError naming the labs."""
    key = str(number).strip().zfill(2)
    for lab in LABS:
        if lab.number == key:
            return lab
    raise KeyError(f"no lab {number!r}; the labs are {', '.join(lab.number for lab in LABS)} "
                   "(rlaif-lab lab list)")
