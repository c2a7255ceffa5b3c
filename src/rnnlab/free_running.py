"""Free-running metrics (``free_running_metrics``), from S prompts of P gold tokens cut from the test
split (for ``reber``: prompts that end where a string begins), each followed by a sample of
``eval.sample_len`` tokens drawn by the model at ``eval.sample_temperature``:

* ``nll_test``: the model's NLL of held-out oracle samples = teacher-forced test loss (coverage).
* ``nll_oracle`` (oracle source): the oracle's NLL of the model's samples given the same prompt
  (quality); the oracle's own samples score ``oracle_entropy`` on average (a test checks it).
* ``valid_fraction`` (reber): the fraction of samples whose first string is a complete, valid
  embedded Reber string (``undecided_fraction``: samples too short to finish it).
* ``exposure_gap`` {k: gap}: mean NLL of the gold continuation (``eval.gap_tokens`` tokens) after k
  self-fed steps minus after the k gold steps, same prompts. Even the oracle has a positive gap (its
  k own tokens are not the ones the continuation followed), so the oracle source also reports
  ``oracle_exposure_gap`` (the oracle run through the same procedure) and ``exposure_gap_kl``
  {k: mean KL(oracle || model) at the scored positions after self-fed minus after gold steps}:
  0 for the oracle itself, > 0 when the model is worse on its own prefixes (He et al. 2019's
  exposure-bias measure as a difference).
* ``distinct_n`` {n: distinct n-grams / all n-grams of the samples} and ``distinct_n_data`` (the
  same for the gold continuations of the same length), Li et al. 2016.
* ``model_entropy``: mean entropy of the model's next-token distribution along its own samples.
* ``sample_ppl_ref`` (``eval.reference`` set): perplexity of the samples under the reference run's
  model (same vocab), given the same prompts.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError
from .data.corpus import Corpus
from .data.oracle import Oracle, entropy, get_oracle, token_logp
from .data.reber import REBER_SYMBOLS, reber_automaton
from .forcing import free_run
from .model import initial_carries


# ----------------------------------------------------------------------------- scoring helpers
@functools.partial(jax.jit, static_argnames=("model",))
def _logits(model, params, tokens):
    """Teacher-forced logits [S, L, V] of tokens [S, L] from zero carries."""
    carries = initial_carries(model.cell, model.num_layers, tokens.shape[0], model.hidden_size, model.forget_bias)
    return model.apply({"params": params}, tokens, carries)[0]


def continuation_logits(model, params, context, m: int, pad_to: int = 0):
    """context [S, L] -> the logits [S, m, V] that predict its last m tokens (teacher-forced).
    ``pad_to``: right-pad the context to this length first (the padding comes after the scored
    tokens, so it changes nothing), so that contexts of several lengths share one compiled program."""
    context = np.asarray(context, np.int32)
    L = context.shape[1]
    if pad_to > L:
        context = np.pad(context, ((0, 0), (0, pad_to - L)))
    return _logits(model, params, jnp.asarray(context[:, :-1]))[:, L - 1 - m:L - 1]


def continuation_nll(model, params, context, m: int, pad_to: int = 0) -> np.ndarray:
    """NLL [S, m] (nats) of the last m tokens of context [S, L] given everything before them."""
    lg = continuation_logits(model, params, context, m, pad_to)
    return -np.asarray(token_logp(lg, jnp.asarray(context[:, -m:], jnp.int32)), np.float64)


def distinct_n(samples, n: int) -> float:
    """Distinct n-grams / all n-grams over the rows of samples [S, L] (n-grams do not cross rows)."""
    samples = np.asarray(samples)
    S, L = samples.shape
    if L < n:
        return float("nan")
    grams = np.stack([samples[:, i:L - n + 1 + i] for i in range(n)], axis=-1).reshape(-1, n)
    return float(len({tuple(g) for g in grams.tolist()}) / grams.shape[0])


def reber_first_string(tokens) -> str:
    """'valid' | 'invalid' | 'undecided': the first embedded Reber string of tokens [L] (which
    should start with its B), checked against the grammar's automaton."""
    names, nxt, _ = reber_automaton()
    state = names.index("start")
    for t, k in enumerate(np.asarray(tokens).tolist()):
        if not 0 <= k < len(REBER_SYMBOLS) or nxt[state, k] < 0:
            return "invalid"
        state = int(nxt[state, k])
        if t > 0 and names[state] == "start":
            return "valid"
    return "undecided"


def prompt_positions(corpus: Corpus, S: int, P: int, C: int) -> np.ndarray:
    """S positions p in the test split with p - P >= 0 and p + C <= N, evenly spaced; for reber, the
    starts of strings (a B right after an E)."""
    ids = corpus.test
    N = ids.size
    if N - C < P:
        raise RnnlabError(f"the test split ({N} tokens) is too short for eval.prompt_len={P} plus {C} tokens of "
                          f"continuation; lower eval.prompt_len / sample_len / exposure_ks or use a longer split")
    if corpus.name == "reber":
        b, e = REBER_SYMBOLS.index("B"), REBER_SYMBOLS.index("E")
        cand = np.flatnonzero((ids[1:] == b) & (ids[:-1] == e)) + 1
        cand = cand[(cand >= P) & (cand + C <= N)]
        if cand.size == 0:
            raise RnnlabError("the reber test split has no string start with room for the prompt and sample; "
                              "use a longer test split (data.num_test)")
        return cand[np.linspace(0, cand.size - 1, S).round().astype(int)]
    return np.linspace(P, N - C, S).round().astype(int)


# ----------------------------------------------------------------------------- free-running metrics
def _gaps(model, params, prompts, gold, own, ks, m, pad_to, oracle: Oracle | None = None) -> tuple[dict, dict]:
    """Exposure-bias gap {k: NLL(gold cont | k own tokens) - NLL(gold cont | k gold tokens)} and,
    with an oracle, the same difference of KL(oracle || model) at the scored positions."""
    gap, gap_kl = {}, {}
    for k in ks:
        ctx_gold = np.concatenate([prompts, gold[:, :k + m]], axis=1)
        ctx_own = np.concatenate([prompts, own[:, :k], gold[:, k:k + m]], axis=1)
        nll_gold = continuation_nll(model, params, ctx_gold, m, pad_to)
        nll_own = continuation_nll(model, params, ctx_own, m, pad_to)
        gap[str(k)] = float(nll_own.mean() - nll_gold.mean())
        if oracle is not None:
            kls = []
            for ctx in (ctx_gold, ctx_own):
                lm = jax.nn.log_softmax(continuation_logits(model, params, ctx, m, pad_to), -1)
                lo = jax.nn.log_softmax(continuation_logits(oracle.model, oracle.params, ctx, m, pad_to), -1)
                kls.append(float(np.asarray((jnp.exp(lo) * (lo - lm)).sum(-1), np.float64).mean()))
            gap_kl[str(k)] = kls[1] - kls[0]
    return gap, gap_kl


def free_running_metrics(model, params, corpus: Corpus, cfg, key, *, test: dict | None = None) -> dict:
    """The free-running metrics of a trained model (module docstring); top-level summary keys.
    ``test``: the teacher-forced test result (its ``loss`` becomes ``nll_test``)."""
    e = cfg.eval
    S, P, n, m = int(e.num_samples), int(e.prompt_len), int(e.sample_len), int(e.gap_tokens)
    ks = sorted({int(k) for k in e.exposure_ks})
    kmax = max(ks, default=0)
    C = max(n, kmax + m)
    pos = prompt_positions(corpus, S, P, C)
    ids = corpus.test
    prompts = np.stack([ids[p - P:p] for p in pos]).astype(np.int32)
    gold = np.stack([ids[p:p + C] for p in pos]).astype(np.int32)
    k_sample, k_oracle = jax.random.split(key)
    temp = float(e.sample_temperature)
    own, own_logits = free_run(model, params, prompts, max(n, kmax), k_sample, temperature=temp)
    own = np.asarray(own)
    samples = own[:, :n]

    out: dict = {}
    if test is not None:
        out["nll_test"] = float(test["loss"])
    out["model_entropy"] = float(np.asarray(entropy(own_logits[:, :n]), np.float64).mean())
    out["distinct_n"] = {str(k): distinct_n(samples, k) for k in e.distinct_n}
    out["distinct_n_data"] = {str(k): distinct_n(gold[:, :n], k) for k in e.distinct_n}
    oracle = get_oracle(cfg.data) if corpus.name == "oracle" else None
    L = P + C  # every scored context is padded to this length: one compiled program per model
    out["exposure_gap"], gap_kl = _gaps(model, params, prompts, gold, own, ks, m, L, oracle)
    if oracle is not None:
        ctx = np.concatenate([prompts, samples], axis=1)
        out["nll_oracle"] = float(continuation_nll(oracle.model, oracle.params, ctx, n, L).mean())
        out["exposure_gap_kl"] = gap_kl
        o_own, _ = free_run(oracle.model, oracle.params, prompts, max(kmax, 1), k_oracle, temperature=1.0)
        out["oracle_exposure_gap"], _ = _gaps(oracle.model, oracle.params, prompts, gold, np.asarray(o_own), ks, m, L)
        out["oracle_entropy"] = corpus.meta.get("oracle_entropy")
    if corpus.name == "reber":
        verdicts = [reber_first_string(row) for row in samples]
        out["valid_fraction"] = verdicts.count("valid") / len(verdicts)
        out["undecided_fraction"] = verdicts.count("undecided") / len(verdicts)
        out["oracle_entropy"] = corpus.meta.get("entropy_rate_nats")
    if str(e.reference):
        from .runs import load_run

        ref = load_run(str(e.reference))
        if list(ref.vocab.itos) != list(corpus.vocab.itos):
            raise RnnlabError(f"eval.reference={str(e.reference)!r} has a different vocabulary ({ref.vocab.size} "
                              f"tokens) than this run ({corpus.vocab.size}); name a run trained on the same data")
        ctx = np.concatenate([prompts, samples], axis=1)
        out["sample_ppl_ref"] = math.exp(float(continuation_nll(ref.model, ref.params, ctx, n, L).mean()))
    return out


def log_items(metrics: dict, prefix: str = "eval/") -> dict:
    """Flatten {name: value or {k: value}} to ``{'eval/name': v, 'eval/name/k': v}`` for metrics.jsonl."""
    out = {}
    for name, v in metrics.items():
        if isinstance(v, dict):
            out.update({f"{prefix}{name}/{k}": x for k, x in v.items()})
        elif v is not None:
            out[f"{prefix}{name}"] = v
    return out

