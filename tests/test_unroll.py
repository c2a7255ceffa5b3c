"""unroll (the only lax.scan, hoisted projection) against a plain Python loop, for every cell."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab.cells import CELLS, get_cell
from rnnlab.unroll import python_unroll, scan_layer, unroll

ALL_CELLS = sorted(CELLS)
T, B, I, H, L = 12, 3, 5, 4, 2
TOL = 1e-5


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def carries_diff(a, b) -> float:
    assert len(a) == len(b)
    out = 0.0
    for ca, cb in zip(a, b):
        assert type(ca) is type(cb)
        out = max(out, max(max_diff(x, y) for x, y in zip(ca, cb)))
    return out


def setup(name, seed=0, steps=T):
    """cell, per-layer params (layer 0: I -> H, others H -> H), non-zero carries, xs [T, B, I]."""
    cell = get_cell(name)
    keys = jax.random.split(jax.random.key(seed), L)
    params = [cell.init(keys[l], I if l == 0 else H, H, init_scale=0.5) for l in range(L)]
    rng = np.random.default_rng(seed)
    carries = tuple(
        type(z)(*[jnp.asarray(rng.uniform(-0.9, 0.9, f.shape), jnp.float32) for f in z])
        for z in (cell.initial_carry((B,), H) for _ in range(L))
    )
    xs = jnp.asarray(rng.normal(size=(steps, B, I)), jnp.float32)
    return cell, params, carries, xs


@pytest.mark.parametrize("name", ALL_CELLS)
def test_unroll_matches_python_loop(name):
    cell, params, carries, xs = setup(name)
    c_scan, hs_scan = unroll(cell, params, carries, xs)
    c_loop, hs_loop = python_unroll(cell, params, carries, xs)
    assert hs_scan.shape == (T, B, H)
    assert max_diff(hs_scan, hs_loop) <= TOL
    assert carries_diff(c_scan, c_loop) <= TOL
    # the last output is the last layer's carried h
    assert max_diff(hs_scan[-1], c_scan[-1].h) == 0.0


@pytest.mark.parametrize("name", ALL_CELLS)
def test_jit_and_unroll_argument(name):
    cell, params, carries, xs = setup(name, seed=1, steps=10)  # 10 is not a multiple of 4
    c_ref, hs_ref = unroll(cell, params, carries, xs)

    jitted = jax.jit(lambda p, c, x: unroll(cell, p, c, x))
    c_jit, hs_jit = jitted(params, carries, xs)
    assert max_diff(hs_jit, hs_ref) <= TOL and carries_diff(c_jit, c_ref) <= TOL

    c4, hs4 = unroll(cell, params, carries, xs, unroll=4)
    assert max_diff(hs4, hs_ref) <= TOL and carries_diff(c4, c_ref) <= TOL


@pytest.mark.parametrize("name", ALL_CELLS)
def test_truncated_bptt_carry_passing(name):
    cell, params, carries, xs = setup(name, seed=2)
    c_full, hs_full = unroll(cell, params, carries, xs)
    c, parts = carries, []
    for w in range(3):
        c, hs = unroll(cell, params, c, xs[4 * w : 4 * (w + 1)])
        parts.append(hs)
    assert max_diff(jnp.concatenate(parts), hs_full) <= TOL
    assert carries_diff(c, c_full) <= TOL
    # restarting from zeros instead is a different computation (the carry really matters)
    zeros = tuple(cell.initial_carry((B,), H) for _ in range(L))
    _, hs_restart = unroll(cell, params, zeros, xs[4:8])
    assert max_diff(hs_restart, hs_full[4:8]) > 1e-4


@pytest.mark.parametrize("name", ALL_CELLS)
def test_scan_layer_gates(name):
    cell, params, carries, xs = setup(name, seed=3)
    p, carry = params[0], carries[0]
    c_scan, hs, gates = scan_layer(cell, p, carry, xs, gates=True)
    assert set(gates) == set(cell.gate_names)

    c, hs_ref, gates_ref = carry, [], {g: [] for g in cell.gate_names}
    for t in range(T):
        c, h, g = cell.inspect(p, c, cell.project(p, xs[t]))
        hs_ref.append(h)
        for k in gates_ref:
            gates_ref[k].append(g[k])
    assert max_diff(hs, jnp.stack(hs_ref)) <= TOL
    for k in cell.gate_names:
        assert gates[k].shape == (T, B, H)
        assert max_diff(gates[k], jnp.stack(gates_ref[k])) <= TOL
    assert max(max_diff(x, y) for x, y in zip(c_scan, c)) <= TOL

    # the same outputs and carry as without gates
    c_plain, hs_plain = scan_layer(cell, p, carry, xs)
    assert max_diff(hs_plain, hs) <= TOL
    assert max(max_diff(x, y) for x, y in zip(c_plain, c_scan)) <= TOL


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_between_is_applied_between_layers(name):
    cell, params, carries, xs = setup(name, seed=4)
    seen = []

    def between(i, hs):
        seen.append((i, hs.shape))
        return hs * 0.0

    c, hs = unroll(cell, params, carries, xs, between=between)
    assert seen == [(1, (T, B, H))]  # once, between layer 0 and layer 1, never before layer 0
    # layer 0 is untouched by `between`
    c0, _ = scan_layer(cell, params[0], carries[0], xs)
    assert max_diff(c[0].h, c0.h) <= TOL
    # layer 1 saw zeros
    c1, hs1 = scan_layer(cell, params[1], carries[1], jnp.zeros((T, B, H)))
    assert max_diff(hs, hs1) <= TOL
    assert max(max_diff(x, y) for x, y in zip(c[1], c1)) <= TOL
    # and that differs from the plain stack
    _, hs_plain = unroll(cell, params, carries, xs)
    assert max_diff(hs, hs_plain) > 1e-3


@pytest.mark.parametrize("name", [c for c in ALL_CELLS if get_cell(c).linear is None])  # linear: tests/test_parallel_cells.py
@pytest.mark.parametrize("steps", [1, 2])
def test_fast_backward_matches_autodiff(name, steps, monkeypatch):
    """The hand-written VJP of the recurrence (cells with ``post``) gives autodiff's gradients for
    params (the peepholes of ``post_params`` included), initial carries and inputs, with loss terms
    on every output and on the final carries."""
    from rnnlab import unroll as unroll_mod

    cell, params, carries, xs = setup(name, seed=5)
    rng = np.random.default_rng(5)
    w_out = jnp.asarray(rng.normal(size=(T, B, H)), jnp.float32)

    def loss(p, c, x):
        c, hs = unroll(cell, p, c, x, unroll=steps)
        return jnp.sum(hs * w_out) + sum(jnp.sum(jnp.sin(f)) for cc in c for f in cc)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    fast = grad(params, carries, xs)
    monkeypatch.setattr(unroll_mod, "FAST_BACKWARD", False)
    slow = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, carries, xs)
    leaves_f, leaves_s = jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(slow)
    assert len(leaves_f) == len(leaves_s) == (4 + len(cell.post_params)) * L + L * len(carries[0]) + 1
    for a, b in zip(leaves_f, leaves_s):
        assert a.shape == b.shape
        assert max_diff(a, b) <= 1e-5 * (1.0 + float(jnp.max(jnp.abs(b))))
    for k in ("w_h",) + cell.post_params:  # the gradient is not trivially zero
        assert float(jnp.max(jnp.abs(fast[0][0][k]))) > 1e-3, k
