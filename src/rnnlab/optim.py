"""The optimizer: optax chains with Zaremba's learning-rate decay and global-norm clipping."""
from __future__ import annotations

import optax

# optax >= 0.2.5 spells it optax.tree.norm (optax.global_norm warns there); older optax has only global_norm
_global_norm = getattr(getattr(optax, "tree", None), "norm", None) or optax.global_norm


def lr_schedule(cfg, steps_per_epoch: int) -> optax.Schedule:
    """Zaremba et al.: lr held for ``lr_hold_epochs`` epochs, then multiplied by ``lr_decay`` at the
    start of every later epoch (TF ptb_word_lm: lr * decay ** max(epoch + 1 - max_epoch, 0));
    optional linear warm-up. Built from optax schedules."""
    t = cfg.train
    hold = max(t.lr_hold_epochs - 1, 0) * steps_per_epoch
    if t.lr_hold_epochs == 0:  # decay from the first epoch on: epoch 0 already gets lr * decay
        sched = optax.exponential_decay(t.lr * t.lr_decay, steps_per_epoch, t.lr_decay, staircase=True)
    else:
        sched = optax.exponential_decay(t.lr, steps_per_epoch, t.lr_decay, transition_begin=hold, staircase=True)
    if t.lr_decay == 1.0:
        sched = optax.constant_schedule(t.lr)
    if t.warmup_steps:
        warm = optax.linear_schedule(0.0, t.lr, t.warmup_steps)
        sched = optax.join_schedules([warm, sched], [t.warmup_steps])
    return sched


def make_optimizer(cfg, steps_per_epoch: int):
    t = cfg.train
    sched = lr_schedule(cfg, steps_per_epoch)
    opt = {
        "sgd": lambda: optax.sgd(sched),
        "adam": lambda: optax.adam(sched),
        "adamw": lambda: optax.adamw(sched, weight_decay=t.weight_decay),
        "rmsprop": lambda: optax.rmsprop(sched, decay=0.9, eps=1e-8),
    }[t.optimizer]()
    parts = [optax.clip_by_global_norm(t.clip_norm)] if t.clip_norm > 0 else []
    tx = optax.chain(*parts, opt)
    if t.get("skip_nonfinite", False):  # skip (and count) updates with a non-finite gradient (faults.py)
        tx = optax.apply_if_finite(tx, max_consecutive_errors=t.max_skips_in_a_row)
    return tx, sched

