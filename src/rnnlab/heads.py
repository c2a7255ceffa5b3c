"""Output distributions ("heads"): what the recurrent core's readout means.

A head is a NamedTuple of pure functions of the readout's logits ``out`` [..., N]:

    nll(out, y) -> [...]                 # -log p(y | out) in nats, one value per predicted unit
    sample(key, out, temperature) -> y   # a draw from p(. | out / temperature), no gradient
    mode(out) -> y                       # the most likely target
    soft(out, temperature) -> [..., N]   # the expected target, differentiable (soft sampling's input)

Forcing (scheduled, always and soft sampling), free-running generation and the free-running
metrics talk only to these four functions, so every kind of sequence gets every training mode.

* ``categorical`` (tokens, N = V): y int [...]; nll = -log softmax(out)[y]; sample =
  ``jax.random.categorical(key, out / temperature)``; mode = argmax; soft = softmax(out / temperature)
  (the input side turns it into the probability-weighted mix of embeddings).
* ``bernoulli`` (frames, N = K independent units, e.g. the 88 piano keys): y float {0, 1} [..., K];
  nll = sum_k BCE(sigmoid(out_k), y_k) (a frame is one predicted unit); sample = Bernoulli(
  sigmoid(out / temperature)); mode = 1[out > 0] (probability > 0.5); soft = sigmoid(out / temperature).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import RnnlabError


class Head(NamedTuple):
    name: str
    nll: Callable  # (out [..., N], y) -> [...]
    sample: Callable  # (key, out [..., N], temperature) -> y
    mode: Callable  # (out [..., N]) -> y
    soft: Callable  # (out [..., N], temperature) -> [..., N]
    target_dtype: jnp.dtype  # int32 (token ids) or float32 (0/1 frames)


def token_nll(logits, targets):
    """logits [..., V], targets [...] int -> NLL in nats [...] (float32)."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)


def frame_nll(logits, frames):
    """logits [..., K], frames [..., K] in {0, 1} -> NLL in nats [...]: the sum over the K units of the
    Bernoulli NLL (optax's numerically stable sigmoid cross-entropy)."""
    return optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), frames.astype(jnp.float32)).sum(-1)


CATEGORICAL = Head(
    name="categorical",
    nll=token_nll,
    sample=lambda key, out, temperature: jax.random.categorical(key, out / temperature, axis=-1).astype(jnp.int32),
    mode=lambda out: jnp.argmax(out, axis=-1).astype(jnp.int32),
    soft=lambda out, temperature: jax.nn.softmax(out / temperature, axis=-1),
    target_dtype=jnp.int32,
)

BERNOULLI = Head(
    name="bernoulli",
    nll=frame_nll,
    sample=lambda key, out, temperature: jax.random.bernoulli(key, jax.nn.sigmoid(out / temperature)).astype(jnp.float32),
    mode=lambda out: (out > 0).astype(jnp.float32),
    soft=lambda out, temperature: jax.nn.sigmoid(out / temperature),
    target_dtype=jnp.float32,
)

HEADS = {"categorical": CATEGORICAL, "bernoulli": BERNOULLI}


def get_head(name: str) -> Head:
    if name not in HEADS:
        raise RnnlabError(f"head {name!r} is not valid; allowed: {', '.join(sorted(HEADS))}")
    return HEADS[name]
