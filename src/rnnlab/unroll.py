"""The only ``lax.scan`` over a cell (convention 4): cells never know about time.

Layout is time-major inside: xs [T, B, I] -> hs [T, B, H]. For each layer the input projection of
the whole window is one matmul (``cell.project`` on [T, B, I]) hoisted out of the scan; the scan
body does only the hidden matmul and the gate nonlinearities. Layers are stacked one whole-window
scan after another (as cuDNN does), so every layer keeps the hoisted projection.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from .cells import Cell


def scan_layer(cell: Cell, params, carry, xs, *, unroll: int = 1, gates: bool = False):
    """One layer over a window. xs [T, B, I]; carry [B, H] fields -> (carry, hs [T, B, H][, gates]).

    With ``gates=True`` the per-step gate values (dict of [T, B, H]) are returned too.
    """
    xp = cell.project(params, xs)  # [T, B, G*H]: one matmul for the whole window

    if gates:
        def body(c, x):
            c, h, g = cell.inspect(params, c, x)
            return c, (h, g)

        carry, (hs, gs) = jax.lax.scan(body, carry, xp, unroll=unroll)
        return carry, hs, gs

    def body(c, x):
        return cell.step_projected(params, c, x)

    carry, hs = jax.lax.scan(body, carry, xp, unroll=unroll)
    return carry, hs


def unroll(
    cell: Cell,
    layer_params: Sequence,
    carries: Sequence,
    xs,
    *,
    between: Callable[[int, jax.Array], jax.Array] | None = None,
    unroll: int = 1,
):
    """Stacked layers over a window: xs [T, B, I] -> (carries, hs [T, B, H] of the last layer).

    ``between(i, hs)`` transforms the output of layer i before it feeds layer i + 1 (dropout on the
    non-recurrent connections, Zaremba et al. 2014). Carries are passed in and returned, so
    truncated BPTT continues the state across windows.
    """
    new_carries = []
    h = xs
    for i, (p, c) in enumerate(zip(layer_params, carries)):
        if i > 0 and between is not None:
            h = between(i, h)
        c, h = scan_layer(cell, p, c, h, unroll=unroll)
        new_carries.append(c)
    return tuple(new_carries), h


def python_unroll(cell: Cell, layer_params: Sequence, carries: Sequence, xs):
    """Reference: the same stacked recurrence as a plain Python loop over time with ``cell.step``
    (no scan, no hoisting). Tests compare ``unroll`` against it."""
    carries = list(carries)
    outs = []
    for t in range(xs.shape[0]):
        h = xs[t]
        for i, p in enumerate(layer_params):
            carries[i], h = cell.step(p, carries[i], h)
        outs.append(h)
    return tuple(carries), jnp.stack(outs)
