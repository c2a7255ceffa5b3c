"""Exact perplexity: exp(sum of NLL / number of target tokens) over a whole split (convention 8).

The split is cut into ``batch_size`` contiguous streams that overlap by one token, so every target
ids[1:] is scored exactly once (``data.eval_windows``); the carry passes across windows; padding
has mask 0. One jitted program scans over all windows and returns the per-window NLL sums, which
are added on the host in float64 (``math.fsum``), so the total does not depend on float32
accumulation order. Evaluators return dicts and never log (convention 10).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .data.batching import eval_windows
from .model import model_carries


def token_nll(logits, targets):
    """logits [..., V], targets [...] int -> NLL in nats [...] (float32)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def make_eval_fn(model):
    """-> jitted fn(params, carries, x [W,B,T], y [W,B,T], mask [W,B,T]) -> (nll per window [W], count per window [W])."""

    @jax.jit
    def eval_split(params, carries, x, y, mask):
        def body(carries, batch):
            xb, yb, mb = batch
            logits, carries = model.apply({"params": params}, xb, carries)
            nll = token_nll(logits, yb) * mb
            return carries, (nll.sum(), mb.sum())

        _, (nll, count) = jax.lax.scan(body, carries, (x, y, mask))
        return nll, count

    return eval_split


def perplexity_from_sums(nll_sum: float, count: float, level: str = "word") -> dict:
    """The split's metrics from its sums: loss (nats/token), ppl, and bpc for character-level data."""
    loss = nll_sum / count
    ppl = math.exp(loss) if loss < 709.0 else math.inf  # exp overflows a float past ~709.78 nats (or NaN)
    out = {"nll_sum": nll_sum, "count": int(count), "loss": loss, "ppl": ppl if loss == loss else math.nan}
    if level == "char":
        out["bpc"] = loss / math.log(2.0)
    return out


def evaluate(model, params, ids, cfg, level: str = "word", eval_fn=None) -> dict:
    """Teacher-forced metrics of ``params`` on the 1-D token array ``ids`` (the whole split)."""
    B = cfg.eval.batch_size
    T = cfg.eval.bptt or cfg.train.bptt
    x, y, mask = eval_windows(np.asarray(ids), B, T)
    eval_fn = eval_fn or make_eval_fn(model)
    nll, count = eval_fn(params, model_carries(cfg, x.shape[1]), x, y, mask.astype(np.float32))
    nll, count = np.asarray(nll, np.float64), np.asarray(count, np.float64)
    return perplexity_from_sums(math.fsum(nll), math.fsum(count), level)
