"""Gated recurrent units in both published conventions. They are different functions, not
reparametrisations of each other. Gate order along the fused axis: r, z, n (PyTorch's).

``gru`` (reset-after; cuDNN, ``torch.nn.GRU``, flax linen ``GRUCell``)::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + r * (h W_hn + b_hn))     # reset applied AFTER the hidden matmul
    h' = (1 - z) * n + z * h                            # z near 1 KEEPS the old state

``gru_cho`` (reset-before; Cho et al. 2014 eq. 5-8, d2l's GRU from scratch)::

    r  = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
    z  = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
    n  = tanh(x W_in + b_in + (r * h) W_hn + b_hn)     # reset applied to h BEFORE the matmul
    h' = (1 - z) * n + z * h                            # z near 1 KEEPS the old state (Cho, d2l)

Beware: Chung et al. 2014 write the same reset-before cell with the update gate the other way,
h' = (1 - z) * h + z * n (z near 1 TAKES the new candidate). That is the same family with z -> 1 - z;
here both names use the Cho / PyTorch direction. Reset-before needs two dependent hidden matmuls
per step (h -> r, then (r * h) W_hn); reset-after needs one, which is why cuDNN chose it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import HiddenCarry, add_bias, core_from_post, hidden_matmul, make_cell, uniform_init, zeros_carry


def _init(key, in_dim, hidden, init_scale=None):
    return uniform_init(key, in_dim, hidden, 3, init_scale)


def _post_reset_after(carry, xp, hm):
    """Everything after the hidden matmul: hm = h @ w_h + b_h [B, 3H], xp the input side [B, 3H]."""
    h = carry.h
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz, hn = jnp.split(hm, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h_new = (1.0 - z) * n + z * h
    return HiddenCarry(h_new), h_new, {"r": r, "z": z, "n": n}


def _core_reset_before(params, carry, xp):
    h = carry.h
    H = h.shape[-1]
    w_h, b_h = params["w_h"], params["b_h"]
    xr, xz, xn = jnp.split(xp, 3, axis=-1)
    hr, hz = jnp.split(add_bias(hidden_matmul(h, w_h[:, : 2 * H]), b_h[: 2 * H]), 2, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + add_bias(hidden_matmul(r * h, w_h[:, 2 * H :]), b_h[2 * H :]))
    h_new = (1.0 - z) * n + z * h
    return HiddenCarry(h_new), h_new, {"r": r, "z": z, "n": n}


def make_gru():
    return make_cell("gru", ("r", "z", "n"), 3, _init, zeros_carry(HiddenCarry),
                     core_from_post(_post_reset_after), post=_post_reset_after)


def make_gru_cho():
    return make_cell("gru_cho", ("r", "z", "n"), 3, _init, zeros_carry(HiddenCarry), _core_reset_before)
