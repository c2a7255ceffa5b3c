"""Transduction (a target at every input step: running parity, count mod k, majority): token inputs,
a categorical head over the task's classes, padded whole sequences (zero carry at each start);
metrics: NLL per target, perplexity and accuracy (targets equal to the argmax).

The kind evaluates with its own pass (``transduction_evaluate``), which also returns, per split,
``seq_acc`` (sequences whose every target is right) and, for the test split, the accuracy by
sequence length and by position (1-based), the state-tracking curves of Grazzi et al. 2025:

    acc_by_length[L]   = (right targets of the sequences of length L) / (their targets)
    acc_by_position[p] = (right targets at step p) / (sequences with a step p)

A model that feeds its own outputs back (``model.feeds_back``: the output-to-hidden network) is
scored as it runs at test time, free (``acc``, ``loss``, ...), and also teacher-forced (``acc_tf``,
``loss_tf``, ``ppl_tf``, ``seq_acc_tf``, test ``acc_tf_by_length``): the gold previous labels fed.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..data.padded import window_groups
from ..data.transduction import transduction_windows
from ..model import model_carries
from .base import Kind, TrainWindows


def model_io(corpus) -> dict:
    return {"vocab_size": corpus.input_size, "num_outputs": corpus.num_classes}


def transduction_train_windows(corpus, cfg) -> TrainWindows:
    w = transduction_windows(corpus.train, cfg.train.batch_size, cfg.train.bptt, sort_by_length=True)
    return TrainWindows(w.x, w.y, w.mask, w.reset, shuffle=True)


def transduction_eval_windows(corpus, cfg, split: str) -> tuple:
    w = transduction_windows(getattr(corpus, split), cfg.eval.batch_size, cfg.eval.bptt or cfg.train.bptt,
                             sort_by_length=True)
    return w.x, w.y, w.mask, w.reset


def split_metrics(sums, corpus) -> dict:
    nll, count, correct = sums
    loss = nll / count
    return {"nll_sum": nll, "count": int(count), "loss": loss, "ppl": math.exp(min(loss, 709.0)),
            "acc": correct / count}


@partial(jax.jit, static_argnames=("model", "teacher"))
def position_pass(model, params, carries, x, y, mask, reset, *, teacher: bool = False):
    """One scan over the windows x, y, mask [W, B, T], reset [W] (the carry restarts from zero where
    ``reset``) -> (NLL sum [W], count [W], right [W], hit [W, B, T] bool: argmax == target). With
    ``teacher`` the model is given the targets as its previous outputs (``outputs=y``)."""
    head = model.head_fns

    def body(c, b):
        xb, yb, mb, rb = b
        c = jax.tree_util.tree_map(lambda a: jnp.where(rb, jnp.zeros_like(a), a), c)
        logits, c = model.apply({"params": params}, xb, c, **({"outputs": yb} if teacher else {}))
        hit = head.mode(logits) == yb
        return c, ((head.nll(logits, yb) * mb).sum(), mb.sum(), (hit * mb).sum(), hit)

    return jax.lax.scan(body, carries, (x, y, mask, reset))[1]


def rows_by_sequence(a, mask, reset):
    """Windows [W, B, T] -> (a [S, L_max] per sequence row, mask [S, L_max]): the windows of each
    group (``data.padded.window_groups``) joined along time, rows without targets dropped."""
    rows, masks = [], []
    L = max(len(g) for g in window_groups(reset)) * mask.shape[2]
    for g in window_groups(reset):
        r = np.swapaxes(a[g], 0, 1).reshape(a.shape[1], -1)  # [B, len(g) * T]
        m = np.swapaxes(mask[g], 0, 1).reshape(mask.shape[1], -1)
        keep = m.sum(1) > 0
        pad = ((0, 0), (0, L - r.shape[1]))
        rows.append(np.pad(r[keep], pad))
        masks.append(np.pad(m[keep], pad))
    return np.concatenate(rows), np.concatenate(masks)


def accuracy_curves(hit, mask, reset) -> dict:
    """hit, mask [W, B, T] -> {acc_by_length: {L: acc}, acc_by_position: {p: acc}, seq_acc_by_length: {L: acc},
    seqs_by_length: {L: sequences}} (keys as strings, L and p 1-based) and ``seq_acc`` (sequences with
    every target right / sequences)."""
    h, m = rows_by_sequence(np.asarray(hit, np.float64), np.asarray(mask, np.float64), reset)
    h = h * m
    lengths = m.sum(1).astype(int)  # a sequence's targets are its first L positions
    right = h.sum(1)
    out = {"acc_by_length": {}, "seq_acc_by_length": {}, "seqs_by_length": {}}
    for L in np.unique(lengths):
        sel = lengths == L
        out["seqs_by_length"][str(int(L))] = int(sel.sum())
        out["acc_by_length"][str(int(L))] = float(right[sel].sum() / (L * sel.sum()))
        out["seq_acc_by_length"][str(int(L))] = float((right[sel] == L).mean())
    per_pos = m.sum(0)
    out["acc_by_position"] = {str(p + 1): float(h[:, p].sum() / per_pos[p]) for p in range(m.shape[1]) if per_pos[p]}
    out["seq_acc"] = float((right == lengths).mean())
    return out


def transduction_evaluate(model, params, windows, cfg, corpus, split: str) -> dict:
    """The split's metrics (``split_metrics``: NLL sums added in float64 like ``evaluate.window_sums``)
    with ``seq_acc``; for the test split the curves of ``accuracy_curves``; for a model that feeds
    its outputs back the same again teacher-forced, suffixed ``_tf``."""
    x, y, mask, reset = (jnp.asarray(a) for a in windows)
    out = {}
    for teacher in (False, True) if getattr(model, "feeds_back", False) else (False,):
        nll, count, right, hit = position_pass(model, params, model_carries(cfg, x.shape[1]), x, y, mask, reset,
                                               teacher=teacher)
        sums = tuple(math.fsum(np.asarray(s, np.float64)) for s in (nll, count, right))
        metrics = split_metrics(sums, corpus)
        curves = accuracy_curves(hit, windows[2], windows[3])
        metrics["seq_acc"] = curves.pop("seq_acc")
        if split == "test":
            metrics.update(curves)
        if teacher:
            metrics = {f"{k}_tf": v for k, v in metrics.items() if k not in ("nll_sum", "count")}
        out.update(metrics)
    return out


def summary(metrics: dict, corpus) -> dict:
    val, test = metrics["valid"], metrics["test"]
    out = {"val_ppl": val["ppl"], "val_loss": val["loss"], "val_acc": val["acc"], "test_ppl": test["ppl"],
           "test_loss": test["loss"], "test_acc": test["acc"], "test_targets": test["count"]}
    for prefix, m in (("val", val), ("test", test)):  # the pass's extras, when present
        out.update({f"{prefix}_{k}": v for k, v in m.items() if f"{prefix}_{k}" not in out and k not in ("nll_sum",
                                                                                                          "count")})
    return out


TRANSDUCTION = Kind("transduction", model_io, transduction_train_windows, transduction_eval_windows, split_metrics,
                    summary, "ppl", evaluate=transduction_evaluate)
