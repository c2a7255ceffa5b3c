"""The only ``lax.scan`` over a cell (convention 4): cells never know about time.

Layout is time-major inside: xs [T, B, I] -> hs [T, B, H]. For each layer the input projection of
the whole window is one matmul (``cell.project`` on [T, B, I]) hoisted out of the scan; the scan
body does only the hidden matmul and the gate nonlinearities. Layers are stacked one whole-window
scan after another (as cuDNN does), so every layer keeps the hoisted projection.

Backward pass. For cells whose step is one hidden matmul followed by elementwise math
(``cell.post`` is set: rnn, gru, lstm), the recurrence has a hand-written VJP (``recurrence``):
the reverse scan carries only the state cotangent and does one matmul per step (dhm @ w_h^T),
and the weight gradient dw_h = sum_t h_{t-1}^T dhm_t is ONE matmul over the whole window after the
scan (plain autodiff does a second, [H, G*H]-sized matmul and accumulation per step inside the
reverse loop). The forward computation is unchanged; gradients agree with autodiff up to fp32
summation order (tests/test_unroll.py). ``FAST_BACKWARD = False`` switches back to plain autodiff
(the benchmark's A/B rows). Cells with ``post_params`` (the peephole LSTM's p_i, p_f, p_o [H])
pass them to ``post`` as keyword arguments; their gradients are summed over the steps of the
reverse scan (elementwise, [H] per step).

Linear cells (``cell.linear`` set: mingru, minlstm) have h_t = a_t * h_{t-1} + b_t with a, b from
the input only; teacher forcing runs them as an associative scan over time (``linear_recurrence``:
depth O(log T) instead of T sequential steps), autodiff gives its backward pass.
``ASSOCIATIVE_SCAN = False`` runs them through the sequential ``lax.scan`` instead (tests, A/B).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from .cells import Cell
from .cells.base import add_bias, hidden_matmul

FAST_BACKWARD = True  # hand-written VJP of the recurrence for cells with ``post`` (read at trace time)
ASSOCIATIVE_SCAN = True  # cells with ``linear`` (mingru, minlstm): associative scan over time, else lax.scan


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def recurrence(post, unroll, w_h, b_h, extra, carry, xp):
    """The scan of a one-matmul cell: xp [T, B, G*H] (input side, bias included), carry [B, H]
    fields -> (carry, hs [T, B, H]). Each step: hm = h @ w_h + b_h; (carry, h) = post(carry, xp_t, hm,
    **extra). ``extra`` is the dict of the cell's ``post_params`` (e.g. peepholes [H]); often empty."""

    def body(c, x):
        c, h, _ = post(c, x, add_bias(hidden_matmul(c.h, w_h), b_h), **extra)
        return c, h

    return jax.lax.scan(body, carry, xp, unroll=unroll)


def _recurrence_fwd(post, unroll, w_h, b_h, extra, carry, xp):
    def body(c, x):
        c_new, h, _ = post(c, x, add_bias(hidden_matmul(c.h, w_h), b_h), **extra)
        return c_new, (h, c)  # keep the carry each step started from (the residual)

    carry_out, (hs, prev) = jax.lax.scan(body, carry, xp, unroll=unroll)
    return (carry_out, hs), (w_h, b_h, extra, prev, xp)


def _recurrence_bwd(post, unroll, res, cts):
    w_h, b_h, extra, prev, xp = res
    d_carry, d_hs = cts
    # hm of every step in one [T*B, H] @ [H, G*H] matmul (the inputs h_{t-1} are all known now)
    hm = add_bias(hidden_matmul(prev.h, w_h), b_h)
    w_t = jax.lax.optimization_barrier(w_h.T)  # a transposed copy made once, so the per-step dot is not an NT dot (slower on a CPU)

    def body(dc, inp):
        c_prev, x_t, hm_t, dh_t = inp
        _, vjp = jax.vjp(lambda c, x, m, e: post(c, x, m, **e)[:2], c_prev, x_t, hm_t, extra)
        dc_prev, dx, dhm, de = vjp((dc, dh_t))
        dh = dc_prev.h + jnp.matmul(dhm.astype(w_t.dtype), w_t, preferred_element_type=jnp.float32)
        return dc_prev._replace(h=dh.astype(dc_prev.h.dtype)), (dx, dhm, de)

    dc0, (dxp, dhm, de) = jax.lax.scan(body, d_carry, (prev, xp, hm, d_hs), reverse=True, unroll=unroll)
    # the weight gradient of all steps at once: [H, T*B] @ [T*B, G*H]
    dw = jnp.einsum("tbh,tbg->hg", prev.h.astype(w_h.dtype), dhm.astype(w_h.dtype),
                    preferred_element_type=jnp.float32).astype(w_h.dtype)
    db = dhm.sum(axis=(0, 1)).astype(b_h.dtype)
    d_extra = jax.tree.map(lambda d, e: d.sum(axis=0).astype(e.dtype), de, extra)  # per-step [T, ...] -> [...]
    return dw, db, d_extra, dc0, dxp.astype(xp.dtype)


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _linear_combine(first, second):
    """Two steps h -> a1 h + b1 then h -> a2 h + b2 composed: h -> (a1 a2) h + (a2 b1 + b2)."""
    a1, b1 = first
    a2, b2 = second
    return a1 * a2, a2 * b1 + b2


def linear_recurrence(a, b, h0):
    """h_t = a_t * h_{t-1} + b_t for all t at once: a, b [T, B, H], h0 [B, H] -> hs [T, B, H].

    The initial state enters as b_0' = a_0 h_0 + b_0; then ``jax.lax.associative_scan`` over time
    (O(log T) depth) with ``_linear_combine``; hs[t] is the b part of steps 0..t composed. No
    division and no logarithm, so it holds any h0 (zero, negative) and a_t in [0, 1] (mingru, minlstm)
    cannot overflow: long products only underflow towards their true, tiny, value.
    """
    b = b.at[0].add(a[0] * h0)
    _, hs = jax.lax.associative_scan(_linear_combine, (a, b), axis=0)
    return hs


def scan_layer(cell: Cell, params, carry, xs, *, unroll: int = 1, gates: bool = False):
    """One layer over a window. xs [T, B, I]; carry [B, H] fields -> (carry, hs [T, B, H][, gates]).

    With ``gates=True`` the per-step gate values (dict of [T, B, H]) are returned too. Cells with
    ``linear`` (mingru, minlstm) run ``linear_recurrence`` (``unroll`` does not apply; the gates are
    read from each step's input and the previous state after it) unless ``ASSOCIATIVE_SCAN`` is off.
    """
    xp = cell.project(params, xs)  # [T, B, G*H]: one matmul for the whole window

    if ASSOCIATIVE_SCAN and cell.linear is not None:
        hs = linear_recurrence(*cell.linear(xp), carry.h)
        if not gates:
            return carry._replace(h=hs[-1]), hs
        prev = carry._replace(h=jnp.concatenate([carry.h[None], hs[:-1]]))  # h_{t-1} [T, B, H]
        _, _, gs = cell.inspect(params, prev, xp)  # elementwise over [T, B, ...]
        return carry._replace(h=hs[-1]), hs, gs

    if gates:
        def body(c, x):
            c, h, g = cell.inspect(params, c, x)
            return c, (h, g)

        carry, (hs, gs) = jax.lax.scan(body, carry, xp, unroll=unroll)
        return carry, hs, gs

    if FAST_BACKWARD and cell.post is not None:
        extra = {k: params[k] for k in cell.post_params}
        return recurrence(cell.post, unroll, params["w_h"], params["b_h"], extra, carry, xp)

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


def step_layers(cell: Cell, layer_params: Sequence, carries: Sequence, h, xt, between: Callable | None = None):
    """One time step through the stacked layers (the body of the time-outer unrolls): h [B, I] ->
    (carries, h [B, H] of the last layer); ``between(i, h, xt)`` before layer i > 0."""
    new = []
    for i, (p, c) in enumerate(zip(layer_params, carries)):
        if i > 0 and between is not None:
            h = between(i, h, xt)
        c, h = cell.step(p, c, h)
        new.append(c)
    return tuple(new), h


def unroll_feedback(
    cell: Cell,
    layer_params: Sequence,
    carries: Sequence,
    xs,
    init_out,
    *,
    feed: Callable,
    readout: Callable,
    between: Callable | None = None,
    unroll: int = 1,
):
    """Time-outer unroll for paths whose input depends on the previous output (scheduled sampling,
    free-running generation). One ``lax.scan`` over time; its body runs, for step t::

        x_t, aux_t = feed(out_{t-1}, xs[t])        # choose / build the input from the last output
        h = x_t; for each layer i: (i > 0: h = between(i, h, xs[t])); carry_i, h = cell.step(...)
        out_t = readout(h, xs[t])                   # e.g. logits [B, V]

    ``xs`` is a pytree with leading axis T (per-step inputs: gold embeddings, coins, keys, dropout
    masks); ``init_out`` is out_{-1} (shaped like out_t). Every layer and the readout run inside the
    body, so nothing is hoisted: only these paths pay for it; teacher forcing uses ``unroll``.
    Returns (carries, outs [T, ...], auxs [T, ...]).
    """

    def body(state, xt):
        cs, prev = state
        h, aux = feed(prev, xt)
        new, h = step_layers(cell, layer_params, cs, h, xt, between)
        out = readout(h, xt)
        return (new, out), (out, aux)

    (carries, _), (outs, auxs) = jax.lax.scan(body, (tuple(carries), init_out), xs, unroll=unroll)
    return carries, outs, auxs


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


def masked_unroll(
    cell: Cell,
    layer_params: Sequence,
    carries: Sequence,
    xs,
    mask,
    *,
    between: Callable[[int, jax.Array], jax.Array] | None = None,
    unroll: int = 1,
):
    """Stacked layers over padded sequences: xs [T, B, I], mask [T, B] (1 = a real step, 0 = padding)
    -> (carries, hs [T, B, H] of the last layer).

    Where mask[t, b] = 0 the carry of row b is left as it was and h is 0:
    ``c_t = m_t * step(c_{t-1}, x_t) + (1 - m_t) * c_{t-1}`` (a select, so padding never enters). So
    the carries returned are each row's carries after its last real step (an encoder's final state of
    right-padded sources); time-reversed inputs with the mask reversed too (padding first) read every
    row backwards from its own last real step, because the leading padded steps keep the initial carry.
    The input projection is hoisted as in ``scan_layer``; the backward pass is autodiff.
    """
    keep = mask.astype(bool)
    new_carries = []
    h = xs
    for i, (p, c) in enumerate(zip(layer_params, carries)):
        if i > 0 and between is not None:
            h = between(i, h)
        xp = cell.project(p, h)  # [T, B, G*H]: one matmul for the whole window

        def body(c, inp, p=p):
            x_t, m_t = inp
            c_new, h_t = cell.step_projected(p, c, x_t)
            c = jax.tree_util.tree_map(lambda a, b: jnp.where(m_t[:, None], a, b), c_new, c)
            return c, jnp.where(m_t[:, None], h_t, jnp.zeros_like(h_t))

        c, h = jax.lax.scan(body, c, (xp, keep), unroll=unroll)
        new_carries.append(c)
    return tuple(new_carries), h


def unroll_reordered(
    cell: Cell,
    layer_params: Sequence,
    carries: Sequence,
    xs,
    init_state,
    *,
    feed: Callable,
    readout: Callable,
    between: Callable | None = None,
    unroll: int = 1,
):
    """Time-outer unroll whose rows may move between steps (beam search: a hypothesis continues from
    its parent's state). One ``lax.scan`` over time; its body runs, for step t::

        x_t, rows = feed(state, xs[t])          # inputs [R, I] and, for each row r, the row it continues
        carry_i = carry_i[rows] for every layer  # each row takes over the state of the row it continues
        h = x_t; for each layer i: (i > 0: h = between(i, h, xs[t])); carry_i, h = cell.step(...)
        state, y_t = readout(h, state, xs[t])    # e.g. logits -> the search's choice of next tokens

    ``xs`` is a pytree with leading axis T (it may be ``jnp.arange(T)``); ``state`` any pytree the
    search keeps (scores, tokens so far). Returns (carries, state, ys [T, ...]).
    """

    def body(st, xt):
        cs, state = st
        h, rows = feed(state, xt)
        cs = jax.tree_util.tree_map(lambda a: jnp.take(a, rows, axis=0), tuple(cs))
        new, h = step_layers(cell, layer_params, cs, h, xt, between)
        state, y = readout(h, state, xt)
        return (new, state), y

    (carries, state), ys = jax.lax.scan(body, (tuple(carries), init_state), xs, unroll=unroll)
    return carries, state, ys
