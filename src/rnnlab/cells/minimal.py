"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv 2410.01201): every gate
reads the input only, so the recurrence is linear in h::

    h_t = a_t * h_{t-1} + b_t,        (a_t, b_t) from x_t alone (``Cell.linear``)

``mingru`` (fused order [n, z], the chunk order of the official BorealisAI/minRNNs code)::

    z  = sigmoid(x W_z + b_z)
    n  = g(x W_n + b_n)                       # the candidate h~
    h' = (1 - z) * h + z * n                  # a = 1 - z, b = z * n

``minlstm`` (fused order [g, f, i], the official chunk order)::

    f  = sigmoid(x W_f + b_f),   i = sigmoid(x W_i + b_i)
    g  = g(x W_g + b_g)                       # the candidate h~
    f' = f / (f + i),  i' = i / (f + i)       # normalised: f' + i' = 1
    h' = f' * h + i' * g                      # a = f', b = i' * g

g(v) = v + 0.5 for v >= 0, sigmoid(v) otherwise (continuous, positive). The paper introduces g for
its log-space scan; the official code applies it in both its sequential and its parallel mode, so
it is part of the cell's function and ``cell.step`` uses it too (REFERENCES.md's equations).
f' and i' are computed as sigmoid(+-d), d = log sigmoid(k_f) - log sigmoid(k_i) = log(f / i), the
official code's form: equal to f / (f + i) but finite when both sigmoids underflow.

Parallel path: ``unroll.linear_recurrence`` runs ``jax.lax.associative_scan`` on the pairs (a, b)
in linear space, not the paper's log-space cumsum / logcumsumexp. The combine (a1 a2, a2 b1 + b2)
never divides (the cumprod-then-divide form is what overflows and what log space repairs), a_t is in
(0, 1) so products only underflow towards their true, tiny, value, and linear space takes any
carry: the zero initial carry and negative states that log(h) cannot hold.

Parameters: w_i [I, G*H], b_i [G*H] only (G = 2 or 3; no hidden matmul, so no w_h, b_h),
uniform(+-s) with s = init_scale or 1/sqrt(H) like the other cells. Carry: ``HiddenCarry(h)``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import HiddenCarry, make_cell, uniform_init, zeros_carry


def g(v: jax.Array) -> jax.Array:
    """g(v) = v + 0.5 (v >= 0), sigmoid(v) (v < 0): the paper's positive candidate activation."""
    return jnp.where(v >= 0, v + 0.5, jax.nn.sigmoid(v))


def _mingru_coeffs(xp):
    """xp [..., 2H] -> a, b [..., H] and the gates {z, n}."""
    kn, kz = jnp.split(xp, 2, axis=-1)
    z, n = jax.nn.sigmoid(kz), g(kn)
    return jax.nn.sigmoid(-kz), z * n, {"z": z, "n": n}  # a = 1 - z, computed as sigmoid(-k)


def _minlstm_coeffs(xp):
    """xp [..., 3H] -> a = f', b = i' * g [..., H] and the gates {f, i, g} (before normalising)."""
    kg, kf, ki = jnp.split(xp, 3, axis=-1)
    d = jax.nn.log_sigmoid(kf) - jax.nn.log_sigmoid(ki)  # log(f / i)
    cand = g(kg)
    return jax.nn.sigmoid(d), jax.nn.sigmoid(-d) * cand, {"f": jax.nn.sigmoid(kf), "i": jax.nn.sigmoid(ki), "g": cand}


def _make_minimal(name, gate_names, coeffs):
    G = len(gate_names)

    def init(key, in_dim, hidden, init_scale=None):
        return uniform_init(key, in_dim, hidden, G, init_scale, recurrent=False)

    def core(params, carry, xp):
        a, b, gates = coeffs(xp)
        h = a * carry.h + b
        return HiddenCarry(h), h, gates

    return make_cell(name, gate_names, G, init, zeros_carry(HiddenCarry), core,
                     linear=lambda xp: coeffs(xp)[:2])


def make_mingru():
    return _make_minimal("mingru", ("n", "z"), _mingru_coeffs)


def make_minlstm():
    return _make_minimal("minlstm", ("g", "f", "i"), _minlstm_coeffs)
