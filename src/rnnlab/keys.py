"""Randomness by purpose (DESIGN.md convention 5): one seed -> one key per use, never a global seed."""
from __future__ import annotations

import jax


def split_keys(seed: int) -> dict:
    """Keys by purpose from one seed: ``init`` (parameters), ``dropout`` (the train steps fold in the
    step number), ``sample`` (generation), ``eval`` (free-running metrics)."""
    init, dropout, sample, evaluation = jax.random.split(jax.random.key(seed), 4)
    return {"init": init, "dropout": dropout, "sample": sample, "eval": evaluation}
