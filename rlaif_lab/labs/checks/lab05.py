"""Hidden tests of lab 05 (book chapter 5: the listings)."""

from __future__ import annotations

import numpy as np

from ..spec import ExerciseList, Fail, Mutation, close, exercise, need, number, open_question

EXERCISES = ExerciseList()
MUTATION = Mutation("feedback-returns", "+ alpha * np.asarray(feedback", "+ np.asarray(feedback")


def _blocked(mask, T):
    """The student's mask as a bool 'not allowed' matrix (a float -inf mask is accepted too)."""
    import torch

    if not isinstance(mask, torch.Tensor):
        raise Fail(f"causal_mask should return a torch tensor, not {type(mask).__name__}")
    if tuple(mask.shape) != (T, T):
        raise Fail(f"causal_mask({T}) should have shape ({T}, {T}); got {tuple(mask.shape)}")
    return mask if mask.dtype == torch.bool else torch.isinf(mask)


@exercise(EXERCISES, "causal-mask", "code", 2, "give listing 5.1.1's encoder a causal mask",
          hint="torch.ones(T, T, dtype=torch.bool).triu(1): True strictly above the diagonal")
def _causal_mask(ns: dict) -> None:
    import torch
    import torch.nn as nn

    fn = need(ns, "causal_mask")
    for T in (1, 4, 6):
        got = _blocked(fn(T), T)
        want = torch.ones(T, T, dtype=torch.bool).triu(1)
        if not torch.equal(got, want):
            raise Fail(f"causal_mask({T}) blocks the wrong positions: row i must block "
                       "exactly the columns j > i")
    torch.manual_seed(0)
    layers = [nn.TransformerEncoderLayer(16, 2, batch_first=True, dropout=0.0).eval()
              for _ in range(2)]

    def run(x):
        with torch.no_grad():
            for layer in layers:
                x = layer(x, src_mask=fn(6))
        return x
    x = torch.randn(1, 6, 16)
    y = x.clone()
    y[0, 5] += 1.0
    if float((run(x)[0, :5] - run(y)[0, :5]).abs().max()) > 1e-5:
        raise Fail("with your mask, changing the last token still moves earlier outputs")
    z = x.clone()
    z[0, 0] += 1.0
    if float((run(x)[0, 5] - run(z)[0, 5]).abs().max()) < 1e-4:
        raise Fail("with your mask the last position no longer sees the first: too much masked")


def _recording_net():
    """A tiny LM with dropout that records, per call, (training mode?, gradients on?)."""
    import torch
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.drop = nn.Embedding(30, 8), nn.Dropout(0.5)
            self.out = nn.Linear(8, 30)
            self.calls = []

        def forward(self, x):
            self.calls.append((self.training, torch.is_grad_enabled()))
            return self.out(self.drop(self.emb(x)))

    torch.manual_seed(0)
    return Net()


@exercise(EXERCISES, "evaluate", "code", 3,
          "fix listing 5.1.2's evaluate: the loss per token, no global vocab_size",
          hint="model.eval(); with torch.no_grad(): for each batch add loss * targets.numel() "
               "and count targets.numel(); the vocabulary is outputs.shape[-1]")
def _evaluate(ns: dict) -> None:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    fn = need(ns, "evaluate_fixed")
    if "vocab_size" in ns:
        del ns["vocab_size"]  # the fix must not rely on the listing's global
    net = _recording_net()
    g = torch.Generator().manual_seed(1)
    data = [(torch.randint(0, 30, (n, 5), generator=g), torch.randint(0, 30, (n, 5), generator=g))
            for n in (8, 3, 1)]
    got = float(fn(net, data, nn.CrossEntropyLoss()))
    if not net.calls:
        raise Fail("evaluate_fixed never called the model")
    if any(training for training, _ in net.calls):
        raise Fail("the model ran in training mode (dropout on): call model.eval() first")
    if any(grad for _, grad in net.calls):
        raise Fail("gradients were recorded: wrap the loop in torch.no_grad()")
    net.eval()
    with torch.no_grad():
        total = sum(float(F.cross_entropy(net(i).reshape(-1, 30), t.reshape(-1),
                                          reduction="sum")) for i, t in data)
    want = total / sum(t.numel() for _, t in data)
    per_batch = float(np.mean([float(F.cross_entropy(net(i).reshape(-1, 30), t.reshape(-1)))
                               for i, t in data]))
    if abs(got - per_batch) < 1e-6 and abs(per_batch - want) > 1e-4:
        raise Fail("this is the listing's mean of batch means; weight each batch by its "
                   "number of target tokens")
    close(got, want, 1e-5, "the mean loss per token over batches of 8, 3 and 1 sequences")


@exercise(EXERCISES, "feedback-returns", "code", 2,
          "fix listing 5.2.2: alpha * feedback inside the return (book 4.3.2)",
          hint="x = rewards + alpha * feedback; then the reward-to-go of x, walking backwards")
def _feedback_returns(ns: dict) -> None:
    def reward_to_go(x, gamma):  # G_t = sum_{k>=t} gamma^(k-t) x_k, by the formula
        return np.array([np.sum(gamma ** np.arange(len(x) - t) * x[t:]) for t in range(len(x))])

    fn = need(ns, "returns_with_feedback")
    rng = np.random.default_rng(0)
    for T, gamma, alpha in ((1, 0.9, 0.5), (8, 0.99, 2.0), (15, 1.0, 0.1), (5, 0.5, 0.0)):
        r, f = rng.normal(size=T), rng.normal(size=T)
        close(fn(r, f, gamma, alpha), reward_to_go(r + alpha * f, gamma), 1e-6,
              f"the returns of {T} steps, gamma={gamma}, alpha={alpha}")


@exercise(EXERCISES, "predict-perplexity", "predict", 1,
          "predict the perplexity of a uniform model over 512 tokens (5.3.1)",
          hint="perplexity = exp(-mean log P); here every log P is log(1/512)")
def _predict_perplexity(ns: dict) -> None:
    import torch
    import torch.nn.functional as F

    got = number(ns, "uniform_perplexity")
    targets = torch.randint(0, 512, (100,), generator=torch.Generator().manual_seed(0))
    want = float(torch.exp(F.cross_entropy(torch.zeros(100, 512), targets)))
    if abs(got - want) > 1e-3 * want:
        raise Fail(f"uniform_perplexity = {got:g} is not exp(cross-entropy) of uniform logits")


open_question(EXERCISES, "transition-feedback", "why a per-transition feedback_fn fits text "
              "poorly, and what fits instead")
