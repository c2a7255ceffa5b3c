"""Exact perplexity: uniform logits give ppl = V; streaming windows equal one pass over the whole
split; every target counted once; bpc = loss / ln 2."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab.config import base_config
from rnnlab.evaluate import evaluate, make_eval_fn, perplexity_from_sums
from rnnlab.model import build_model, model_carries

V, N = 17, 211  # vocab, tokens in the split (prime, so no (B, T) divides it evenly)


def cfg_for(cell="lstm", eval_batch=4, eval_bptt=5):
    c = base_config()
    c.model.cell = cell
    c.model.hidden_size = 8
    c.model.embed_size = 6
    c.model.num_layers = 2
    c.model.init_scale = 0.5  # a model with real memory, so carried state matters
    c.eval.batch_size = eval_batch
    c.eval.bptt = eval_bptt
    return c


def init_params(cfg, seed=0):
    model = build_model(cfg, V)
    tokens = jnp.zeros((2, 3), jnp.int32)
    params = model.init(jax.random.key(seed), tokens, model_carries(cfg, 2))["params"]
    return model, params


def split_ids(seed=0, n=N):
    return np.random.default_rng(seed).integers(0, V, size=n).astype(np.int32)


def log_softmax64(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def one_pass_nll(model, params, cfg, ids) -> float:
    """Sum of NLL of ids[1:] in one batch-1 window over the whole split, log-softmax in float64."""
    logits, _ = model.apply({"params": params}, jnp.asarray(ids[None, :-1]), model_carries(cfg, 1))
    lp = log_softmax64(logits[0])  # [N-1, V]
    return -float(lp[np.arange(ids.size - 1), ids[1:]].sum())


@pytest.mark.parametrize("bsz,bptt", [(1, 7), (4, 5), (10, 300)])
def test_uniform_logits_give_vocab_size(bsz, bptt):
    cfg = cfg_for(eval_batch=bsz, eval_bptt=bptt)
    model, params = init_params(cfg)
    params = jax.tree_util.tree_map(lambda x: x, params)
    params["readout"] = {"kernel": jnp.zeros_like(params["readout"]["kernel"]),
                         "bias": jnp.zeros_like(params["readout"]["bias"])}
    out = evaluate(model, params, split_ids(), cfg)
    assert out["ppl"] == pytest.approx(V, rel=1e-5)
    assert out["loss"] == pytest.approx(math.log(V), rel=1e-5)
    assert out["count"] == N - 1


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_streaming_equals_one_pass(cell):
    cfg = cfg_for(cell)
    model, params = init_params(cfg, seed=3)
    ids = split_ids(1)
    ref_sum = one_pass_nll(model, params, cfg, ids)
    for bptt in (1, 13, 64, N - 1, N + 20):  # one stream, windows of every size (one window: N - 1)
        cfg.eval.batch_size, cfg.eval.bptt = 1, bptt
        out = evaluate(model, params, ids, cfg)
        assert out["count"] == N - 1
        assert out["nll_sum"] == pytest.approx(ref_sum, rel=1e-5), bptt
        assert out["ppl"] == pytest.approx(math.exp(ref_sum / (N - 1)), rel=1e-5), bptt
    # B > 1 streams start from a zero state at their first token, so they are a different
    # computation from one pass; test_streams_equal_independent_passes checks them stream by stream.


@pytest.mark.parametrize("bsz,bptt", [(2, 9), (7, 30), (4, 1)])
def test_streams_equal_independent_passes(bsz, bptt):
    """B streams of L pairs: each stream's NLL equals a batch-1 pass over its own tokens."""
    cfg = cfg_for("gru", eval_batch=bsz, eval_bptt=bptt)
    model, params = init_params(cfg, seed=4)
    ids = split_ids(2)
    out = evaluate(model, params, ids, cfg)
    pairs = N - 1
    Ls = -(-pairs // bsz)
    total, count = 0.0, 0
    for b in range(bsz):
        lo, hi = b * Ls, min((b + 1) * Ls, pairs)
        if hi <= lo:
            continue
        seg = ids[lo:hi + 1]  # inputs ids[lo:hi], targets ids[lo+1:hi+1]
        total += one_pass_nll(model, params, cfg, seg)
        count += seg.size - 1
    assert count == pairs
    assert out["count"] == pairs
    assert out["nll_sum"] == pytest.approx(total, rel=1e-5)
    assert out["loss"] == pytest.approx(total / pairs, rel=1e-5)
    # the carry really passes across windows: restarting every window from zeros differs
    if bptt < Ls:
        fn = make_eval_fn(model)
        from rnnlab.data import eval_windows

        x, y, m = eval_windows(ids, bsz, bptt)
        zero = model_carries(cfg, bsz)
        reset = sum(float(fn(params, zero, x[w:w + 1], y[w:w + 1], m[w:w + 1])[0][0]) for w in range(x.shape[0]))
        assert abs(reset - total) > 1e-3 * total


@pytest.mark.parametrize("n,bsz,bptt", [(2, 1, 1), (3, 3, 4), (50, 8, 35), (211, 20, 20), (1000, 3, 7),
                                         (1000, 7, 1000)])
def test_token_count(n, bsz, bptt):
    """Every target ids[1:] counted exactly once (masks of the padding are zero)."""
    cfg = cfg_for("rnn", eval_batch=bsz, eval_bptt=bptt)
    cfg.model.num_layers = 1
    model, params = init_params(cfg)
    ids = split_ids(3, n)
    out = evaluate(model, params, ids, cfg)
    assert out["count"] == n - 1
    assert np.isfinite(out["loss"]) and out["loss"] > 0


def test_bpc_is_loss_over_ln2():
    cfg = cfg_for("lstm")
    model, params = init_params(cfg, seed=5)
    ids = split_ids(4)
    word = evaluate(model, params, ids, cfg, level="word")
    char = evaluate(model, params, ids, cfg, level="char")
    assert "bpc" not in word
    assert char["loss"] == word["loss"]
    assert char["bpc"] == pytest.approx(char["loss"] / math.log(2.0), rel=1e-12)
    assert char["ppl"] == pytest.approx(2.0 ** char["bpc"], rel=1e-10)
    s = perplexity_from_sums(10.0 * math.log(2.0), 10, "char")
    assert s["bpc"] == pytest.approx(1.0) and s["ppl"] == pytest.approx(2.0) and s["count"] == 10


def test_eval_bptt_zero_uses_train_bptt():
    cfg = cfg_for("gru", eval_batch=3, eval_bptt=0)
    cfg.train.bptt = 6
    model, params = init_params(cfg, seed=6)
    ids = split_ids(5)
    a = evaluate(model, params, ids, cfg)
    cfg.eval.bptt = 6
    b = evaluate(model, params, ids, cfg)
    assert a["nll_sum"] == b["nll_sum"] and a["count"] == b["count"] == N - 1
