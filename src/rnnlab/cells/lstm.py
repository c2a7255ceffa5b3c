"""LSTM without peepholes, PyTorch gate order i, f, g, o along the fused axis::

    i  = sigmoid(x W_ii + b_ii + h W_hi + b_hi)
    f  = sigmoid(x W_if + b_if + h W_hf + b_hf)
    g  = tanh   (x W_ig + b_ig + h W_hg + b_hg)
    o  = sigmoid(x W_io + b_io + h W_ho + b_ho)
    c' = f * c + i * g
    h' = o * tanh(c')

The carry is ``LSTMCarry(h, c)``. ``forget_bias`` (default 1.0, Jozefowicz et al. 2015) is the
initial value of the input-side forget bias b_if (b_hf starts at 0), so the forget gate starts
mostly open; it is an ordinary trainable parameter afterwards, which keeps the function identical
to ``torch.nn.LSTM`` with the same weights. ``forget_bias=None`` keeps the plain uniform init.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import LSTMCarry, core_from_post, make_cell, uniform_init, zeros_carry


def _post(carry, xp, hm):
    """Everything after the hidden matmul: hm = h @ w_h + b_h [B, 4H], xp the input side [B, 4H]."""
    gates = xp + hm
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
    c = f * carry.c + i * g
    h = o * jnp.tanh(c)
    return LSTMCarry(h, c), h, {"i": i, "f": f, "g": g, "o": o, "c": c}


def lstm_init(forget_bias: float | None):
    """init(key, I, H, init_scale) of the four-gate (i, f, g, o) LSTM weights, forget bias applied."""

    def init(key, in_dim, hidden, init_scale=None):
        p = uniform_init(key, in_dim, hidden, 4, init_scale)
        if forget_bias is not None:
            p["b_i"] = p["b_i"].at[hidden : 2 * hidden].set(float(forget_bias))
            p["b_h"] = p["b_h"].at[hidden : 2 * hidden].set(0.0)
        return p

    return init


def make_lstm(forget_bias: float | None = 1.0):
    return make_cell("lstm", ("i", "f", "g", "o", "c"), 4, lstm_init(forget_bias), zeros_carry(LSTMCarry),
                     core_from_post(_post), post=_post)
