"""What the model is fed while training. Teacher forcing: the gold previous token, always.

``make_loss_fn(model, cfg)`` returns ``loss_fn(params, carries, x, y, key, step)`` ->
``(mean NLL, (carries, metrics))`` where metrics are sums (``nll_sum``, ``count``).
"""
from __future__ import annotations

import jax.numpy as jnp

from .evaluate import token_nll


def make_loss_fn(model, cfg):
    def loss_fn(params, carries, x, y, key, step):
        logits, carries = model.apply({"params": params}, x, carries, train=True, rngs={"dropout": key})
        nll = token_nll(logits, y)
        metrics = {"nll_sum": nll.sum(), "count": jnp.asarray(nll.size, jnp.float32), "eps": jnp.float32(1.0)}
        return nll.mean(), (carries, metrics)

    return loss_fn
