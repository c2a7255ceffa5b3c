"""Elman RNN: h' = act(x W_i + b_i + h W_h + b_h), act = tanh (``rnn``) or relu (``rnn_relu``).

Matches ``torch.nn.RNN(nonlinearity=...)`` and flax ``nn.SimpleCell`` (one gate, G = 1).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import HiddenCarry, core_from_post, make_cell, uniform_init, zeros_carry


def make_rnn(activation: str = "tanh"):
    act = {"tanh": jnp.tanh, "relu": jax.nn.relu}[activation]

    def init(key, in_dim, hidden, init_scale=None):
        return uniform_init(key, in_dim, hidden, 1, init_scale)

    def post(carry, xp, hm):
        h = act(xp + hm)
        return HiddenCarry(h), h, {"h": h}

    name = "rnn" if activation == "tanh" else f"rnn_{activation}"
    return make_cell(name, ("h",), 1, init, zeros_carry(HiddenCarry), core_from_post(post), post=post)
