"""mingru / minlstm: the associative scan over time (unroll.linear_recurrence) against the sequential
lax.scan of cell.step (unroll.ASSOCIATIVE_SCAN = False) and float64 numpy: forward, gradients,
stacks, carries across windows, gates, and T = 4096."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import unroll as unroll_mod
from rnnlab.cells import get_cell
from rnnlab.unroll import linear_recurrence, python_unroll, scan_layer, unroll

LINEAR = ["mingru", "minlstm"]
T, B, I, H, L = 16, 3, 5, 4, 2
TOL = 1e-5


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def setup(name, seed=0, steps=T, layers=L, scale=0.5):
    cell = get_cell(name)
    keys = jax.random.split(jax.random.key(seed), layers)
    params = [cell.init(keys[l], I if l == 0 else H, H, init_scale=scale) for l in range(layers)]
    rng = np.random.default_rng(seed)
    carries = tuple(cell.initial_carry((B,), H)._replace(h=jnp.asarray(rng.uniform(-0.9, 0.9, (B, H)), jnp.float32))
                    for _ in range(layers))
    xs = jnp.asarray(rng.normal(size=(steps, B, I)), jnp.float32)
    return cell, params, carries, xs


def both(compute):
    """(compute(), compute() with the linear cells forced through the sequential lax.scan).

    The switch is read at trace time and jax caches traces per function object, so ``compute`` must
    build its functions (lambdas, jax.jit / jax.grad wrappers) afresh on every call."""
    par = compute()
    old = unroll_mod.ASSOCIATIVE_SCAN
    unroll_mod.ASSOCIATIVE_SCAN = False
    try:
        return par, compute()
    finally:
        unroll_mod.ASSOCIATIVE_SCAN = old


def test_linear_recurrence_matches_numpy_loop():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 1.0, (37, B, H))
    b = rng.normal(size=(37, B, H))
    h0 = rng.normal(size=(B, H))
    hs = linear_recurrence(*(jnp.asarray(v, jnp.float32) for v in (a, b, h0)))
    h, ref = h0, []
    for t in range(37):
        h = a[t] * h + b[t]
        ref.append(h)
    assert hs.shape == (37, B, H)
    assert max_diff(hs, np.stack(ref)) <= TOL
    assert np.abs(np.stack(ref)).max() > 0.5
    one = linear_recurrence(*(jnp.asarray(v[:1], jnp.float32) for v in (a, b)), jnp.asarray(h0, jnp.float32))
    assert max_diff(one[0], a[0] * h0 + b[0]) <= 1e-6  # T = 1: h0 enters as a_0 h_0 + b_0


@pytest.mark.parametrize("name", LINEAR)
def test_the_associative_path_is_the_one_used(name):
    """Teacher forcing traces no sequential loop for these cells; the switch brings the scan back."""
    cell, params, carries, xs = setup(name)
    assoc, seq = both(lambda: str(jax.make_jaxpr(lambda p, c, x: unroll(cell, p, c, x))(params, carries, xs)))
    assert "scan[" not in assoc
    assert "scan[" in seq


@pytest.mark.parametrize("name", LINEAR)
def test_associative_equals_sequential_two_layers(name):
    cell, params, carries, xs = setup(name, seed=1)
    (c_par, hs_par), (c_seq, hs_seq) = both(lambda: jax.jit(lambda p, c, x: unroll(cell, p, c, x))(params, carries, xs))
    c_loop, hs_loop = python_unroll(cell, params, carries, xs)
    assert hs_par.shape == (T, B, H) and len(c_par) == L
    assert max_diff(hs_par, hs_seq) <= TOL and max_diff(hs_par, hs_loop) <= TOL
    for a, b in zip(c_par, c_seq):
        assert type(a) is type(b) and max_diff(a.h, b.h) <= TOL
    assert max_diff(c_par[-1].h, hs_par[-1]) == 0.0  # the output carry is h_T
    # layer 1 really reads layer 0 (the stack is not two copies of one layer)
    _, hs0 = scan_layer(cell, params[0], carries[0], xs)
    _, hs1 = scan_layer(cell, params[1], carries[1], hs0)
    assert max_diff(hs1, hs_par) <= TOL
    assert np.abs(np.asarray(hs_par)).max() > 0.1


@pytest.mark.parametrize("name", LINEAR)
def test_associative_gradients_equal_sequential(name):
    """d loss / d (params, initial carries, inputs) through the associative scan = through lax.scan."""
    cell, params, carries, xs = setup(name, seed=2)
    w_out = jnp.asarray(np.random.default_rng(2).normal(size=(T, B, H)), jnp.float32)

    def loss(p, c, x):
        c, hs = unroll(cell, p, c, x)
        return jnp.sum(hs * w_out) + sum(jnp.sum(jnp.sin(cc.h)) for cc in c)

    par, seq = both(lambda: jax.jit(jax.grad(lambda p, c, x: loss(p, c, x), argnums=(0, 1, 2)))(params, carries, xs))
    leaves_p, leaves_s = jax.tree_util.tree_leaves(par), jax.tree_util.tree_leaves(seq)
    assert len(leaves_p) == len(leaves_s) == 2 * L + L + 1  # w_i, b_i per layer; h per carry; xs
    for a, b in zip(leaves_p, leaves_s):
        assert a.shape == b.shape
        assert max_diff(a, b) <= TOL * (1.0 + float(jnp.max(jnp.abs(b))))
    assert float(jnp.max(jnp.abs(par[1][0].h))) > 1e-2  # the initial carry's gradient is not zero
    assert float(jnp.max(jnp.abs(par[0][0]["w_i"]))) > 1e-2


@pytest.mark.parametrize("name", LINEAR)
def test_carry_across_two_windows_equals_one_window(name):
    cell, params, carries, xs = setup(name, seed=3)
    c_full, hs_full = unroll(cell, params, carries, xs)
    c_mid, hs_a = unroll(cell, params, carries, xs[:5])  # uneven split: 5 + 11
    c_end, hs_b = unroll(cell, params, c_mid, xs[5:])
    assert max_diff(jnp.concatenate([hs_a, hs_b]), hs_full) <= TOL
    assert max(max_diff(a.h, b.h) for a, b in zip(c_end, c_full)) <= TOL
    zeros = tuple(cell.initial_carry((B,), H) for _ in range(L))
    _, hs_zero = unroll(cell, params, zeros, xs[5:])
    assert max_diff(hs_zero, hs_b) > 1e-3  # the carried state matters


@pytest.mark.parametrize("name", LINEAR)
def test_gates_on_the_associative_path(name):
    cell, params, carries, xs = setup(name, seed=4)
    p, c = params[0], carries[0]
    (c_par, hs_par, g_par), (c_seq, hs_seq, g_seq) = both(lambda: scan_layer(cell, p, c, xs, gates=True))
    assert set(g_par) == set(cell.gate_names)
    for k in cell.gate_names:
        assert g_par[k].shape == (T, B, H) and max_diff(g_par[k], g_seq[k]) <= TOL
    assert max_diff(hs_par, hs_seq) <= TOL and max_diff(c_par.h, c_seq.h) <= TOL
    if name == "mingru":  # h_t - h_{t-1} = z_t (n_t - h_{t-1})
        prev = jnp.concatenate([c.h[None], hs_par[:-1]])
        assert max_diff(hs_par - prev, g_par["z"] * (g_par["n"] - prev)) <= TOL


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("regime", ["plain", "long_memory", "saturated"])
def test_long_sequence_4096(name, regime):
    """T = 4096: finite, and the associative scan equals the sequential one (forward and the gradient
    of the initial carry). long_memory: a_t = 1 - ~1e-4, so h_0 still weighs ~e^-0.5 at the end;
    saturated: pre-activations of +-60, so a_t is exactly 0 or 1 in fp32 at some steps."""
    T_ = 4096
    cell, params, carries, xs = setup(name, seed=5, steps=T_, layers=1)
    p = dict(params[0])
    if regime == "long_memory":  # keep the state: mingru z ~ 1e-4; minlstm i / f ~ 1e-4
        keep = slice(H, 2 * H) if name == "mingru" else slice(2 * H, 3 * H)
        p["b_i"] = p["b_i"].at[keep].add(-9.0)
        if name == "minlstm":
            p["b_i"] = p["b_i"].at[H : 2 * H].add(9.0)
    if regime == "saturated":
        p["w_i"] = p["w_i"] * 120.0
    c0 = carries[0]

    def compute():  # fresh functions on every call (see ``both``)
        def run(c):
            carry, hs = scan_layer(cell, p, c, xs)
            return hs, carry

        def last(c):  # d h_T / d h_0 through the whole window
            return jnp.sum(run(c)[1].h)

        return jax.jit(run)(c0), jax.jit(jax.grad(last))(c0).h

    ((hs_par, c_par), d_par), ((hs_seq, c_seq), d_seq) = both(compute)
    for v in (hs_par, d_par):
        assert np.isfinite(np.asarray(v)).all()
    scale = 1.0 + float(jnp.max(jnp.abs(hs_seq)))
    assert max_diff(hs_par, hs_seq) <= 1e-5 * scale and max_diff(c_par.h, c_seq.h) <= 1e-5 * scale
    assert max_diff(d_par, d_seq) <= 1e-5 * (1.0 + float(jnp.max(jnp.abs(d_seq))))
    if regime == "long_memory":
        assert float(jnp.min(jnp.abs(d_seq))) > 0.1  # h_0 still reaches step 4096
    if regime == "saturated":
        a, _ = cell.linear(cell.project(p, xs))
        assert float(jnp.min(a)) == 0.0 and float(jnp.max(a)) == 1.0
