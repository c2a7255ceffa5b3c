"""The cell protocol shared by every recurrent cell.

A cell is a NamedTuple of pure functions (convention 1 of DESIGN.md)::

    init(key, in_dim, hidden, init_scale=None) -> params      # dict of named arrays
    initial_carry(batch_shape, hidden, dtype) -> carry         # NamedTuple, e.g. LSTMCarry(h, c)
    project(params, x[..., I]) -> xp[..., G*H]                 # input side of every gate, one matmul
    step_projected(params, carry, xp[B, G*H]) -> (carry, h[B, H])   # hidden side only (the scan body)
    step(params, carry, x[B, I]) -> (carry, h[B, H])           # = step_projected(project(x))
    inspect(params, carry, xp) -> (carry, h, gates)            # same math, also returns the gate values
    post(carry, xp, hm, **extra) -> (carry, h, gates)          # everything after hm = h @ w_h + b_h, or None
    post_params: tuple of names                                # params post reads besides w_h, b_h (extra)
    linear(xp) -> (a, b)                                       # h_t = a_t * h_{t-1} + b_t, or None

``post`` splits a step into its one hidden matmul and the elementwise rest, so that ``unroll.py``
can give the recurrence a faster backward pass (the weight gradient as one matmul over the whole
window instead of one per step). Cells whose step is not of that form (``gru_cho``: a second
matmul of r * h) leave it None and get plain autodiff. ``post_params`` names the parameters other
than w_h, b_h that ``post`` reads (the peephole LSTM's p_i, p_f, p_o [H]); they are passed to it as
keyword arguments and get their gradients from the same hand-written VJP. Empty for the other cells.

``linear`` marks cells whose recurrence is linear in h with coefficients from the input only
(mingru, minlstm): h_t = a_t * h_{t-1} + b_t, (a_t, b_t) = linear(xp_t), both [..., H]. Teacher
forcing then runs an associative scan over time instead of a sequential one (``unroll.py``).

Shapes: B batch, T time, I input, H hidden, G number of gates. Parameters follow PyTorch's
layout (two bias vectors per gate, gates fused along the last axis) but transposed so that the
math is ``x @ w``: ``w_i [I, G*H]``, ``w_h [H, G*H]``, ``b_i [G*H]``, ``b_h [G*H]``.

Each cell family writes its gate equations exactly once, in a ``core(params, carry, xp)`` that
returns ``(carry, h, gates)``; ``step_projected`` drops the gates (XLA removes the dead values).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Params = dict
Carry = Any


class HiddenCarry(NamedTuple):
    """Carry of the tanh RNN and both GRUs: the hidden state h [..., H]."""

    h: jax.Array


class LSTMCarry(NamedTuple):
    """Carry of the LSTM: hidden state h and cell state c, both [..., H]. Named, never (h, c) by position."""

    h: jax.Array
    c: jax.Array


class Cell(NamedTuple):
    name: str
    num_gates: int
    gate_names: tuple
    init: Callable[..., Params]
    initial_carry: Callable[..., Carry]
    project: Callable[[Params, jax.Array], jax.Array]
    step_projected: Callable[[Params, Carry, jax.Array], tuple]
    step: Callable[[Params, Carry, jax.Array], tuple]
    inspect: Callable[[Params, Carry, jax.Array], tuple]
    post: Callable[..., tuple] | None = None
    post_params: tuple = ()
    linear: Callable[[jax.Array], tuple] | None = None


def init_bound(hidden: int, init_scale: float | None) -> float:
    """The bound s of uniform(-s, s): init_scale (Zaremba et al.) or 1/sqrt(H) (PyTorch)."""
    return (1.0 / hidden**0.5) if init_scale is None else float(init_scale)


def uniform_init(key, in_dim: int, hidden: int, num_gates: int, init_scale: float | None,
                 recurrent: bool = True) -> Params:
    """All weights and biases uniform(-s, s), s = ``init_bound(H, init_scale)``: w_i [I, G*H],
    b_i [G*H] and, when ``recurrent`` (every cell with a hidden matmul), w_h [H, G*H], b_h [G*H]."""
    s = init_bound(hidden, init_scale)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    gh = num_gates * hidden
    u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -s, s)
    if not recurrent:
        return {"w_i": u(k1, (in_dim, gh)), "b_i": u(k3, (gh,))}
    return {"w_i": u(k1, (in_dim, gh)), "w_h": u(k2, (hidden, gh)), "b_i": u(k3, (gh,)), "b_h": u(k4, (gh,))}


def add_bias(y: jax.Array, b: jax.Array) -> jax.Array:
    """y[..., N] + b[N] with the broadcast written out (the tests run with rank promotion = raise)."""
    return y + b.reshape((1,) * (y.ndim - 1) + b.shape)


def project(params: Params, x: jax.Array) -> jax.Array:
    """Input side of all gates in one matmul: x[..., I] @ w_i[I, G*H] + b_i -> [..., G*H]."""
    w = params["w_i"]
    return add_bias(jnp.matmul(x.astype(w.dtype), w, preferred_element_type=jnp.float32), params["b_i"])


def hidden_matmul(h: jax.Array, w: jax.Array) -> jax.Array:
    """h @ w with fp32 accumulation; the operands take w's dtype (bf16 when the model asks for it)."""
    return jnp.matmul(h.astype(w.dtype), w, preferred_element_type=jnp.float32)


def hidden_preact(params: Params, h: jax.Array) -> jax.Array:
    """hm = h @ w_h + b_h [..., G*H]: the hidden side of every gate (fp32)."""
    return add_bias(hidden_matmul(h, params["w_h"]), params["b_h"])


def core_from_post(post, post_params: tuple = ()):
    """core(params, carry, xp) = post(carry, xp, h @ w_h + b_h, **{k: params[k] for k in post_params}),
    for cells with one hidden matmul."""

    def core(params, carry, xp):
        return post(carry, xp, hidden_preact(params, carry.h), **{k: params[k] for k in post_params})

    return core


def make_cell(name, gate_names, num_gates, init, initial_carry, core, post=None, post_params=(),
              linear=None) -> Cell:
    def step_projected(params, carry, xp):
        carry, h, _ = core(params, carry, xp)
        return carry, h

    def step(params, carry, x):
        return step_projected(params, carry, project(params, x))

    return Cell(
        name=name,
        num_gates=num_gates,
        gate_names=tuple(gate_names),
        init=init,
        initial_carry=initial_carry,
        project=project,
        step_projected=step_projected,
        step=step,
        inspect=core,
        post=post,
        post_params=tuple(post_params),
        linear=linear,
    )


def zeros_carry(carry_type):
    def initial_carry(batch_shape, hidden: int, dtype=jnp.float32):
        shape = tuple(batch_shape) + (hidden,)
        return carry_type(*[jnp.zeros(shape, dtype) for _ in carry_type._fields])

    return initial_carry
