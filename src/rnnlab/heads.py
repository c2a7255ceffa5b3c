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
  ``sampler="inverse_cdf"`` (``train.sampler``) draws the same distribution from ONE uniform per row
  (``inverse_cdf_categorical``) instead of Gumbel noise on all N logits: other tokens than the default's
  for the same key, 10-20x cheaper on a CPU at V = 10k (docs/perf_notes.md).
* ``bernoulli`` (frames, N = K independent units, e.g. the 88 piano keys): y float {0, 1} [..., K];
  nll = sum_k BCE(sigmoid(out_k), y_k) (a frame is one predicted unit); sample = Bernoulli(
  sigmoid(out / temperature)); mode = 1[out > 0] (probability > 0.5); soft = sigmoid(out / temperature).
"""
from __future__ import annotations

import math
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
SAMPLERS = ("gumbel", "inverse_cdf")


def inverse_cdf_categorical(key, out, temperature):
    """A draw from softmax(out / temperature) by inverting the CDF: out [..., N] -> int32 [...].

    ``jax.random.categorical`` (Gumbel-max) makes N random numbers and two logs per row; this makes one
    uniform u per row and finds the first token whose cumulative probability exceeds u * total. The
    cumulative sum is blocked (hand-written: no library offers it for jit): N is padded to nb * m
    (nb = ceil(sqrt(N)), padding has probability 0), p = exp(out / temperature - max) is viewed as
    [nb, m]; the block is the first whose running block total exceeds u * total, the token the first in
    it whose running sum (from the total before the block) does. Tokens of probability 0 are never
    drawn: a count that rounding pushes past the block's last positive entry falls back to it."""
    z = out.astype(jnp.float32) / temperature
    lead, N = z.shape[:-1], z.shape[-1]
    m = -(-N // max(1, int(math.isqrt(N - 1)) + 1)) if N > 1 else 1  # block width ~ sqrt(N)
    nb = -(-N // m)
    z = z.reshape(-1, N)
    p = jnp.exp(z - z.max(axis=-1, keepdims=True))
    p = jnp.pad(p, ((0, 0), (0, nb * m - N))).reshape(-1, nb, m)  # [R, nb, m]
    totals = jnp.cumsum(p.sum(axis=-1), axis=-1)  # [R, nb] running block totals
    u = jax.random.uniform(key, (p.shape[0], 1), jnp.float32) * totals[:, -1:]
    block = jnp.minimum((totals <= u).sum(axis=-1), nb - 1)  # [R]
    before = jnp.where(block > 0, jnp.take_along_axis(totals, jnp.maximum(block - 1, 0)[:, None], 1)[:, 0], 0.0)
    inner = jnp.take_along_axis(p, block[:, None, None], 1)[:, 0]  # [R, m]
    within = (jnp.cumsum(inner, axis=-1) + before[:, None] <= u).sum(axis=-1)
    last_positive = m - 1 - jnp.argmax((inner > 0)[:, ::-1], axis=-1)
    token = block * m + jnp.minimum(within, last_positive)
    return token.reshape(lead).astype(jnp.int32)


def get_head(name: str) -> Head:
    if name not in HEADS:
        raise RnnlabError(f"head {name!r} is not valid; allowed: {', '.join(sorted(HEADS))}")
    return HEADS[name]


def with_sampler(head: Head, sampler: str) -> Head:
    """``head`` drawing its samples with ``sampler`` (``train.sampler``): gumbel, the head's own
    (``jax.random.categorical``), or inverse_cdf (``inverse_cdf_categorical``, the same distribution) for
    the categorical head; a Bernoulli draw is one uniform per unit either way."""
    if sampler not in SAMPLERS:
        raise RnnlabError(f"train.sampler={sampler!r} is not valid; allowed: {', '.join(SAMPLERS)}")
    if head.name == "categorical" and sampler == "inverse_cdf":
        return head._replace(sample=inverse_cdf_categorical)
    return head
