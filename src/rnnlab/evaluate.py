"""Exact metrics from sums and counts over a whole split (convention 8): perplexity exp(sum of NLL /
number of target tokens) for tokens, NLL per frame for frames.

A token stream is cut into ``batch_size`` contiguous streams that overlap by one token, so every
target ids[1:] is scored exactly once (``data.eval_windows``); the carry passes across windows;
padding has mask 0. Padded whole sequences (``data.padded``) come with a ``reset`` flag per window:
there the carry restarts from zero, so each sequence starts from a zero carry. One jitted program scans over all windows and returns the per-window NLL sums, which
are added on the host in float64 (``math.fsum``), so the total does not depend on float32
accumulation order. Evaluators return dicts and never log (convention 10).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .data.batching import eval_windows
from .heads import token_nll  # noqa: F401  (re-exported: evaluate.token_nll)
from .model import model_carries


def make_eval_fn(model, *, resets: bool = False):
    """-> jitted fn(params, carries, x [W,B,T(,K)], y, mask [W,B,T][, reset [W]]) -> (nll per window [W],
    count per window [W], correct per window [W]). With ``resets`` the carry restarts from zero at the
    windows whose ``reset`` is True (padded whole sequences); ``correct`` counts targets equal to the
    head's mode (token accuracy; for frames, frames predicted exactly)."""
    head = model.head_fns

    def body(params, carries, batch):
        xb, yb, mb = batch[:3]
        if resets:
            carries = jax.tree_util.tree_map(lambda c: jnp.where(batch[3], jnp.zeros_like(c), c), carries)
        logits, carries = model.apply({"params": params}, xb, carries)
        nll = head.nll(logits, yb) * mb
        hit = head.mode(logits) == yb
        hit = hit if hit.ndim == mb.ndim else hit.all(-1)
        return carries, (nll.sum(), mb.sum(), (hit * mb).sum())

    @jax.jit
    def eval_split(params, carries, *windows):
        _, sums = jax.lax.scan(lambda c, b: body(params, c, b), carries, windows)
        return sums

    return eval_split


def perplexity_from_sums(nll_sum: float, count: float, level: str = "word") -> dict:
    """The split's metrics from its sums: loss (nats/token), ppl, and bpc for character-level data."""
    loss = nll_sum / count
    ppl = math.exp(loss) if loss < 709.0 else math.inf  # exp overflows a float past ~709.78 nats (or NaN)
    out = {"nll_sum": nll_sum, "count": int(count), "loss": loss, "ppl": ppl if loss == loss else math.nan}
    if level == "char":
        out["bpc"] = loss / math.log(2.0)
    return out


def window_sums(model, params, windows, cfg, eval_fn=None) -> tuple[float, float, float]:
    """(NLL sum, count, correct) over ``windows`` = (x, y, mask[, reset]) [W, B, T, ...], each added
    in float64 on the host."""
    eval_fn = eval_fn or make_eval_fn(model, resets=len(windows) > 3)
    x = windows[0]
    sums = eval_fn(params, model_carries(cfg, x.shape[1]), *windows)
    return tuple(math.fsum(np.asarray(s, np.float64)) for s in sums)


def evaluate(model, params, ids, cfg, level: str = "word", eval_fn=None) -> dict:
    """Teacher-forced metrics of ``params`` on the 1-D token array ``ids`` (the whole split)."""
    B = cfg.eval.batch_size
    T = cfg.eval.bptt or cfg.train.bptt
    x, y, mask = eval_windows(np.asarray(ids), B, T)
    nll, count, _ = window_sums(model, params, (x, y, mask.astype(np.float32)), cfg, eval_fn)
    return perplexity_from_sums(nll, count, level)


def frame_metrics(nll_sum: float, count: float, num_units: int) -> dict:
    """A frame split's metrics from its sums: ``nll`` (= ``loss``) nats per frame (time step), summed over
    its ``num_units`` keys, and ``nll_per_key`` = nll / num_units."""
    loss = nll_sum / count
    return {"nll_sum": nll_sum, "count": int(count), "loss": loss, "nll": loss, "nll_per_key": loss / num_units}
