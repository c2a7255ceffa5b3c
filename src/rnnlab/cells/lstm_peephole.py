"""LSTM with diagonal peepholes (Gers & Schmidhuber 2000; Graves 2013 eq. 7-11; the LSTM of
Chung et al. 2014). Gate order i, f, g, o along the fused axis (``lstm``'s, PyTorch's)::

    i  = sigmoid(x W_ii + b_ii + h W_hi + b_hi + p_i * c)
    f  = sigmoid(x W_if + b_if + h W_hf + b_hf + p_f * c)
    g  = tanh   (x W_ig + b_ig + h W_hg + b_hg)
    c' = f * c + i * g
    o  = sigmoid(x W_io + b_io + h W_ho + b_ho + p_o * c')     # o peeks at the NEW cell state
    h' = o * tanh(c')

h, c are the carry ``LSTMCarry(h, c)`` of step t - 1; ``*`` is elementwise: the peepholes
p_i, p_f, p_o [H] are diagonal (one weight per unit), as in Graves 2013 and Chung et al.

Parameters: ``lstm``'s (w_i [I, 4H], w_h [H, 4H], b_i, b_h [4H]) plus p_i, p_f, p_o [H], so
4H(I + H) + 8H + 3H in all (H = 36, I = 88: 18252). With the same key the first four are exactly
``lstm``'s init (same ``forget_bias`` option, default 1.0); the peepholes are uniform(+-s) like
every other weight (s = init_scale, or 1/sqrt(H)), drawn from ``fold_in(key, 1)``. Uniform rather
than zeros: Chung et al.'s code is reported to initialise them like the other weights (not
re-checked here), and zeros would start the cell as the plain LSTM.

The step is still one hidden matmul followed by elementwise math (the peephole terms are
elementwise in c), so the cell has a ``post`` and uses the hand-written VJP of ``unroll.py``; the
peepholes are its ``post_params`` and get their gradients there (tests compare with autodiff).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import LSTMCarry, core_from_post, init_bound, make_cell, zeros_carry
from .lstm import lstm_init

PEEPHOLES = ("p_i", "p_f", "p_o")


def _diag(p: jax.Array, c: jax.Array) -> jax.Array:
    """p[H] * c[..., H] with the broadcast written out (rank promotion = raise in the tests)."""
    return p.reshape((1,) * (c.ndim - 1) + p.shape) * c


def _post(carry, xp, hm, p_i, p_f, p_o):
    """Everything after the hidden matmul: hm = h @ w_h + b_h [B, 4H], xp the input side [B, 4H]."""
    i, f, g, o = jnp.split(xp + hm, 4, axis=-1)
    c_prev = carry.c
    i = jax.nn.sigmoid(i + _diag(p_i, c_prev))
    f = jax.nn.sigmoid(f + _diag(p_f, c_prev))
    g = jnp.tanh(g)
    c = f * c_prev + i * g
    o = jax.nn.sigmoid(o + _diag(p_o, c))
    h = o * jnp.tanh(c)
    return LSTMCarry(h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}


def make_lstm_peephole(forget_bias: float | None = 1.0):
    base_init = lstm_init(forget_bias)

    def init(key, in_dim, hidden, init_scale=None):
        p = base_init(key, in_dim, hidden, init_scale)
        s = init_bound(hidden, init_scale)
        peep = jax.random.uniform(jax.random.fold_in(key, 1), (len(PEEPHOLES), hidden), jnp.float32, -s, s)
        p.update({name: peep[j] for j, name in enumerate(PEEPHOLES)})
        return p

    return make_cell("lstm_peephole", ("i", "f", "g", "o", "c"), 4, init, zeros_carry(LSTMCarry),
                     core_from_post(_post, PEEPHOLES), post=_post, post_params=PEEPHOLES)
