"""Cells against their docstring equations (float64 numpy), torch.nn and flax.linen with copied weights."""
from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.cells import CELLS, Cell, HiddenCarry, LSTMCarry, get_cell
from rnnlab.cells.base import uniform_init
from rnnlab.unroll import unroll

ALL_CELLS = sorted(CELLS)
B, I, H = 3, 5, 4
TOL = 1e-5


# ----------------------------------------------------------------------------- helpers


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def random_carry(cell: Cell, batch: int, hidden: int, rng: np.random.Generator):
    """A non-zero carry of the cell's own NamedTuple type (so the carry path is exercised)."""
    zeros = cell.initial_carry((batch,), hidden)
    return type(zeros)(*[jnp.asarray(rng.uniform(-0.9, 0.9, z.shape), jnp.float32) for z in zeros])


def carry_diff(a, b) -> float:
    assert type(a) is type(b)
    return max(max_diff(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------------------- numpy reference
# Written from the docstring equations, independently of the jax code: x @ W + b, gates fused along
# the last axis in the documented order, float64 throughout.


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _split(v, n):
    return np.split(v, n, axis=-1)


def np_rnn(act):
    def step(p, carry, x):
        h = act(x @ p["w_i"] + p["b_i"] + carry["h"] @ p["w_h"] + p["b_h"])
        return {"h": h}, h

    return step


def np_gru(p, carry, x):  # reset-after
    h = carry["h"]
    xr, xz, xn = _split(x @ p["w_i"] + p["b_i"], 3)
    hr, hz, hn = _split(h @ p["w_h"] + p["b_h"], 3)
    r = _sig(xr + hr)
    z = _sig(xz + hz)
    n = np.tanh(xn + r * hn)
    h = (1 - z) * n + z * h
    return {"h": h}, h


def np_gru_cho(p, carry, x):  # reset-before
    h = carry["h"]
    W_hr, W_hz, W_hn = _split(p["w_h"], 3)
    b_hr, b_hz, b_hn = _split(p["b_h"], 3)
    xr, xz, xn = _split(x @ p["w_i"] + p["b_i"], 3)
    r = _sig(xr + h @ W_hr + b_hr)
    z = _sig(xz + h @ W_hz + b_hz)
    n = np.tanh(xn + (r * h) @ W_hn + b_hn)
    h = (1 - z) * n + z * h
    return {"h": h}, h


def np_lstm(p, carry, x):
    a = x @ p["w_i"] + p["b_i"] + carry["h"] @ p["w_h"] + p["b_h"]
    i, f, g, o = _split(a, 4)
    c = _sig(f) * carry["c"] + _sig(i) * np.tanh(g)
    h = _sig(o) * np.tanh(c)
    return {"h": h, "c": c}, h


def np_lstm_peephole(p, carry, x):
    a = x @ p["w_i"] + p["b_i"] + carry["h"] @ p["w_h"] + p["b_h"]
    i, f, g, o = _split(a, 4)
    c_prev = carry["c"]
    i = _sig(i + p["p_i"] * c_prev)
    f = _sig(f + p["p_f"] * c_prev)
    c = f * c_prev + i * np.tanh(g)
    o = _sig(o + p["p_o"] * c)  # the output gate sees the new cell state
    h = o * np.tanh(c)
    return {"h": h, "c": c}, h


def np_g(v):  # Feng et al.'s candidate activation
    return np.where(v >= 0, v + 0.5, _sig(v))


def np_mingru(p, carry, x):
    kn, kz = _split(x @ p["w_i"] + p["b_i"], 2)
    z = _sig(kz)
    h = (1 - z) * carry["h"] + z * np_g(kn)
    return {"h": h}, h


def np_minlstm(p, carry, x):
    kg, kf, ki = _split(x @ p["w_i"] + p["b_i"], 3)
    f, i = _sig(kf), _sig(ki)
    h = f / (f + i) * carry["h"] + i / (f + i) * np_g(kg)
    return {"h": h}, h


NP_STEP = {
    "rnn": np_rnn(np.tanh),
    "rnn_relu": np_rnn(lambda v: np.maximum(v, 0.0)),
    "gru": np_gru,
    "gru_cho": np_gru_cho,
    "lstm": np_lstm,
    "lstm_peephole": np_lstm_peephole,
    "mingru": np_mingru,
    "minlstm": np_minlstm,
}
LSTMS = ("lstm", "lstm_peephole")  # the cells with an LSTMCarry(h, c) and a forget_bias option


def test_every_cell_has_a_numpy_reference():
    assert set(NP_STEP) == set(CELLS)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_step_matches_numpy_equations(name):
    cell = get_cell(name)
    rng = np.random.default_rng(0)
    # init_scale 0.5 so gates leave their linear region and every term matters.
    params = cell.init(jax.random.key(1), I, H, init_scale=0.5)
    carry = random_carry(cell, B, H, rng)
    np_params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    np_carry = {k: np.asarray(v, np.float64) for k, v in carry._asdict().items()}
    for _ in range(20):
        x = rng.normal(size=(B, I)).astype(np.float32)
        carry, h = cell.step(params, carry, jnp.asarray(x))
        np_carry, np_h = NP_STEP[name](np_params, np_carry, x.astype(np.float64))
        assert h.shape == (B, H) and h.dtype == jnp.float32
        assert max_diff(h, np_h) <= TOL
        assert set(carry._fields) == set(np_carry)
        for field in carry._fields:
            assert max_diff(getattr(carry, field), np_carry[field]) <= TOL
    assert np.abs(np_h).max() > 0.05  # the comparison was not between two zero arrays


# ----------------------------------------------------------------------------- torch parity

TORCH = {
    "rnn": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "gru": ("GRU", {}),
    "lstm": ("LSTM", {}),
}


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    yield torch
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(TORCH))
def test_parity_with_torch(name, torch):
    T, L = 20, 2
    cls, kwargs = TORCH[name]
    torch.manual_seed(0)
    module = getattr(torch.nn, cls)(I, H, num_layers=L, **kwargs)
    # rnnlab stores torch's weights transposed (x @ w); gate orders are torch's.
    layer_params = [
        {
            "w_i": jnp.asarray(getattr(module, f"weight_ih_l{l}").detach().numpy().T),
            "w_h": jnp.asarray(getattr(module, f"weight_hh_l{l}").detach().numpy().T),
            "b_i": jnp.asarray(getattr(module, f"bias_ih_l{l}").detach().numpy()),
            "b_h": jnp.asarray(getattr(module, f"bias_hh_l{l}").detach().numpy()),
        }
        for l in range(L)
    ]
    cell = get_cell(name)
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(T, B, I)).astype(np.float32)
    carries = tuple(random_carry(cell, B, H, rng) for _ in range(L))

    h0 = torch.from_numpy(np.stack([np.asarray(c.h) for c in carries]))
    with torch.no_grad():
        if name == "lstm":
            c0 = torch.from_numpy(np.stack([np.asarray(c.c) for c in carries]))
            out, (h_n, c_n) = module(torch.from_numpy(xs), (h0, c0))
        else:
            out, h_n = module(torch.from_numpy(xs), h0)

    new_carries, hs = unroll(cell, layer_params, carries, jnp.asarray(xs))
    assert hs.shape == (T, B, H)
    assert max_diff(hs, out.numpy()) <= TOL
    for l in range(L):
        assert max_diff(new_carries[l].h, h_n[l].numpy()) <= TOL
        if name == "lstm":
            assert max_diff(new_carries[l].c, c_n[l].numpy()) <= TOL


# ----------------------------------------------------------------------------- flax parity
# Flax linen cells have fewer bias vectors than rnnlab (which has torch's two per gate):
#   SimpleCell: input bias only (no b_h)          -> rnnlab b_h = 0
#   GRUCell: biases on ir, iz, in and hn only      -> rnnlab b_hr = b_hz = 0
#   LSTMCell / OptimizedLSTMCell: hidden bias only -> rnnlab b_i = 0
# With those rnnlab biases zeroed and everything else copied, the two functions are equal.


def _dense(w, b=None):
    return {"kernel": w} if b is None else {"kernel": w, "bias": b}


def flax_rnn(p, H):
    assert not np.any(np.asarray(p["b_h"]))
    return {"i": _dense(p["w_i"], p["b_i"]), "h": _dense(p["w_h"])}


def flax_gru(p, H):
    assert not np.any(np.asarray(p["b_h"][: 2 * H]))
    wi, wh, bi, bh = (jnp.split(p[k], 3, axis=-1) for k in ("w_i", "w_h", "b_i", "b_h"))
    out = {f"i{g}": _dense(wi[j], bi[j]) for j, g in enumerate("rzn")}
    out.update(hr=_dense(wh[0]), hz=_dense(wh[1]), hn=_dense(wh[2], bh[2]))
    return out


def flax_lstm(p, H):
    assert not np.any(np.asarray(p["b_i"]))
    wi, wh, bh = (jnp.split(p[k], 4, axis=-1) for k in ("w_i", "w_h", "b_h"))
    out = {f"i{g}": _dense(wi[j]) for j, g in enumerate("ifgo")}
    out.update({f"h{g}": _dense(wh[j], bh[j]) for j, g in enumerate("ifgo")})
    return out


FLAX = {
    # id: (rnnlab cell, flax class, zero these rnnlab bias slices [(name, start, stop)], converter)
    "rnn-SimpleCell": ("rnn", fnn.SimpleCell, [("b_h", 0, H)], flax_rnn),
    "gru-GRUCell": ("gru", fnn.GRUCell, [("b_h", 0, 2 * H)], flax_gru),
    "lstm-LSTMCell": ("lstm", fnn.LSTMCell, [("b_i", 0, 4 * H)], flax_lstm),
    "lstm-OptimizedLSTMCell": ("lstm", fnn.OptimizedLSTMCell, [("b_i", 0, 4 * H)], flax_lstm),
}


@pytest.mark.parametrize("case", sorted(FLAX))
def test_parity_with_flax_linen(case):
    name, cls, zero, convert = FLAX[case]
    cell = get_cell(name)
    params = cell.init(jax.random.key(3), I, H, init_scale=0.5)
    for key, start, stop in zero:
        params[key] = params[key].at[start:stop].set(0.0)
    module = cls(features=H)
    variables = {"params": convert(params, H)}
    # The converted tree has exactly the parameter names and shapes flax itself creates.
    x0 = jnp.zeros((B, I))
    ref_vars = module.init(jax.random.key(0), module.initialize_carry(jax.random.key(0), x0.shape), x0)
    assert jax.tree.map(jnp.shape, ref_vars) == jax.tree.map(jnp.shape, variables)

    rng = np.random.default_rng(4)
    carry = random_carry(cell, B, H, rng)
    flax_carry = (carry.c, carry.h) if name == "lstm" else carry.h  # flax LSTM carry is (c, h)
    for _ in range(6):
        x = jnp.asarray(rng.normal(size=(B, I)), jnp.float32)
        carry, h = cell.step(params, carry, x)
        flax_carry, flax_h = module.apply(variables, flax_carry, x)
        assert max_diff(h, flax_h) <= TOL
        if name == "lstm":
            assert max_diff(carry.c, flax_carry[0]) <= TOL
            assert max_diff(carry.h, flax_carry[1]) <= TOL
        else:
            assert max_diff(carry.h, flax_carry) <= TOL


# ----------------------------------------------------------------------------- GRU conventions


def test_gru_and_gru_cho_are_different_functions():
    gru, cho = get_cell("gru"), get_cell("gru_cho")
    params = gru.init(jax.random.key(5), I, H, init_scale=0.5)
    rng = np.random.default_rng(5)
    c1 = c2 = random_carry(gru, B, H, rng)
    diff = 0.0
    for _ in range(5):
        x = jnp.asarray(rng.normal(size=(B, I)), jnp.float32)
        c1, h1 = gru.step(params, c1, x)
        c2, h2 = cho.step(params, c2, x)
        diff = max(diff, max_diff(h1, h2))
    assert diff > 1e-3


@pytest.mark.parametrize("name", ["gru", "gru_cho"])
def test_update_gate_direction(name):
    """z near 1 keeps the old state; z near 0 takes the candidate n (both conventions here)."""
    cell = get_cell(name)
    params = cell.init(jax.random.key(6), I, H, init_scale=0.5)
    rng = np.random.default_rng(6)
    carry = random_carry(cell, B, H, rng)
    x = jnp.asarray(rng.normal(size=(B, I)), jnp.float32)
    z = slice(H, 2 * H)  # order r, z, n

    keep = dict(params, b_i=params["b_i"].at[z].set(1e4))
    new, h, gates = cell.inspect(keep, carry, cell.project(keep, x))
    assert float(gates["z"].min()) == 1.0
    assert max_diff(h, carry.h) <= 1e-6 and max_diff(new.h, carry.h) <= 1e-6

    take = dict(params, b_i=params["b_i"].at[z].set(-1e4))
    new, h, gates = cell.inspect(take, carry, cell.project(take, x))
    assert float(gates["z"].max()) < 1e-30
    assert max_diff(h, gates["n"]) <= 1e-6
    assert max_diff(h, carry.h) > 1e-2  # and n is not the old state


# ----------------------------------------------------------------------------- init


def test_lstm_forget_bias():
    H_ = 8
    p = get_cell("lstm").init(jax.random.key(7), I, H_)
    f = slice(H_, 2 * H_)  # order i, f, g, o
    np.testing.assert_array_equal(np.asarray(p["b_i"][f]), 1.0)
    np.testing.assert_array_equal(np.asarray(p["b_h"][f]), 0.0)
    # The other slices keep the uniform draw.
    bound = 1 / np.sqrt(H_)
    for b in (p["b_i"], p["b_h"]):
        rest = np.concatenate([np.asarray(b[:H_]), np.asarray(b[2 * H_ :])])
        assert np.abs(rest).max() <= bound and np.abs(rest).min() > 0

    p2 = get_cell("lstm", forget_bias=2.5).init(jax.random.key(7), I, H_)
    np.testing.assert_array_equal(np.asarray(p2["b_i"][f]), 2.5)

    plain = get_cell("lstm", forget_bias=None).init(jax.random.key(7), I, H_)
    expected = uniform_init(jax.random.key(7), I, H_, 4, None)
    assert set(plain) == set(expected)
    for k in expected:
        np.testing.assert_array_equal(np.asarray(plain[k]), np.asarray(expected[k]))
    assert np.abs(np.asarray(plain["b_i"][f])).max() <= bound


@pytest.mark.parametrize("init_scale", [None, 0.1])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_init_scheme(name, init_scale):
    I_, H_ = 24, 32
    cell = get_cell(name, forget_bias=None) if name in LSTMS else get_cell(name)
    p = cell.init(jax.random.key(8), I_, H_, init_scale=init_scale)
    G = cell.num_gates
    shapes = {"w_i": (I_, G * H_), "b_i": (G * H_,)}
    if cell.linear is None:  # every cell but mingru / minlstm has a hidden matmul
        shapes.update(w_h=(H_, G * H_), b_h=(G * H_,))
    shapes.update({k: (H_,) for k in cell.post_params})  # the peepholes
    assert {k: v.shape for k, v in p.items()} == shapes
    assert all(v.dtype == jnp.float32 for v in p.values())
    bound = 1 / np.sqrt(H_) if init_scale is None else init_scale
    for k, v in p.items():
        assert np.abs(np.asarray(v)).max() <= bound, k
    # uniform over the whole range (the weight matrices have >= 1024 entries each)
    for k in ("w_i", "w_h"):
        if k in p:
            assert np.abs(np.asarray(p[k])).max() > 0.9 * bound, k
    # independent draws per tensor
    if "w_h" in p:
        assert max_diff(p["w_h"][:I_], p["w_i"]) > 0 and max_diff(p["b_h"], p["b_i"]) > 0


# ----------------------------------------------------------------------------- registry, inspect


def test_get_cell_unknown_name():
    with pytest.raises(RnnlabError) as err:
        get_cell("nope")
    msg = str(err.value)
    assert "nope" in msg
    for name in CELLS:
        assert name in msg


@pytest.mark.parametrize("name", ALL_CELLS)
def test_get_cell_returns_named_cell(name):
    cell = get_cell(name)
    assert isinstance(cell, Cell)
    assert cell.name == name
    carry = cell.initial_carry((2, B), H)
    assert isinstance(carry, LSTMCarry if name in LSTMS else HiddenCarry)
    for field in carry:
        assert field.shape == (2, B, H) and field.dtype == jnp.float32
        assert not np.any(np.asarray(field))


@pytest.mark.parametrize("name", ALL_CELLS)
def test_inspect_matches_step_projected(name):
    cell = get_cell(name)
    params = cell.init(jax.random.key(9), I, H, init_scale=0.5)
    rng = np.random.default_rng(9)
    carry = random_carry(cell, B, H, rng)
    x = jnp.asarray(rng.normal(size=(B, I)), jnp.float32)
    xp = cell.project(params, x)
    assert xp.shape == (B, cell.num_gates * H)

    c1, h1 = cell.step_projected(params, carry, xp)
    c2, h2, gates = cell.inspect(params, carry, xp)
    c3, h3 = cell.step(params, carry, x)
    assert max_diff(h1, h2) == 0.0 and carry_diff(c1, c2) == 0.0
    assert max_diff(h1, h3) <= TOL and carry_diff(c1, c3) <= TOL
    assert set(gates) == set(cell.gate_names)
    for g in gates.values():
        assert g.shape == (B, H)
    if name in LSTMS:
        assert max_diff(gates["c"], c2.c) == 0.0
        assert max_diff(h2, gates["o"] * jnp.tanh(gates["c"])) <= 1e-6


# ----------------------------------------------------------------------------- lstm_peephole


def test_lstm_peephole_param_count():
    """Chung et al.'s music LSTM size: H = 36 units on 88 keys. By hand: w_i 88 x 144 = 12672,
    w_h 36 x 144 = 5184, b_i + b_h 2 x 144 = 288, p_i + p_f + p_o 3 x 36 = 108."""
    p = get_cell("lstm_peephole").init(jax.random.key(0), 88, 36)
    assert sum(int(v.size) for v in p.values()) == 12672 + 5184 + 288 + 108 == 18252
    lstm = get_cell("lstm").init(jax.random.key(0), 88, 36)
    assert sum(int(v.size) for v in lstm.values()) == 18252 - 108


def test_lstm_peephole_init_and_reduction_to_lstm():
    """Same key: the four LSTM tensors equal ``lstm``'s init (forget bias included), the peepholes are
    uniform(+-s) draws of their own; with zero peepholes the cell is exactly ``lstm``."""
    H_ = 16
    peep, lstm = get_cell("lstm_peephole"), get_cell("lstm")
    p = peep.init(jax.random.key(7), I, H_, init_scale=0.3)
    q = lstm.init(jax.random.key(7), I, H_, init_scale=0.3)
    for k in q:
        np.testing.assert_array_equal(np.asarray(p[k]), np.asarray(q[k]))
    np.testing.assert_array_equal(np.asarray(p["b_i"][H_ : 2 * H_]), 1.0)  # forget bias 1.0 by default
    np.testing.assert_array_equal(np.asarray(get_cell("lstm_peephole", forget_bias=2.0).init(
        jax.random.key(7), I, H_)["b_i"][H_ : 2 * H_]), 2.0)
    peeps = np.stack([np.asarray(p[k]) for k in ("p_i", "p_f", "p_o")])
    assert np.abs(peeps).max() <= 0.3 and np.abs(peeps).max() > 0.2
    assert min(max_diff(peeps[a], peeps[b]) for a, b in ((0, 1), (0, 2), (1, 2))) > 0.05

    rng = np.random.default_rng(7)
    c1 = c2 = random_carry(lstm, B, H_, rng)
    zero = dict(p, p_i=0 * p["p_i"], p_f=0 * p["p_f"], p_o=0 * p["p_o"])
    diff_zero = diff_peep = 0.0
    c3 = c1
    for _ in range(5):
        x = jnp.asarray(rng.normal(size=(B, I)), jnp.float32)
        c1, h1 = peep.step(zero, c1, x)
        c2, h2 = lstm.step(q, c2, x)
        c3, h3 = peep.step(p, c3, x)
        diff_zero, diff_peep = max(diff_zero, carry_diff(c1, c2)), max(diff_peep, max_diff(h3, h2))
    assert diff_zero <= 1e-7
    assert diff_peep > 1e-3  # and the peepholes do change the function


@pytest.mark.parametrize("gate,field", [("i", "p_i"), ("f", "p_f"), ("o", "p_o")])
def test_lstm_peephole_each_peephole_reaches_its_gate(gate, field):
    """Changing one peephole moves its own gate by sigmoid(pre + p * c) and leaves the others;
    i and f peek at c_{t-1}, o at the new c_t."""
    cell = get_cell("lstm_peephole")
    p = cell.init(jax.random.key(8), I, H, init_scale=0.5)
    rng = np.random.default_rng(8)
    carry = random_carry(cell, B, H, rng)
    xp = cell.project(p, jnp.asarray(rng.normal(size=(B, I)), jnp.float32))
    _, _, g0 = cell.inspect(p, carry, xp)
    q = dict(p, **{field: p[field] + 2.0})
    _, _, g1 = cell.inspect(q, carry, xp)
    looked_at = g0["c"] if gate == "o" else carry.c  # o sees c_t (unchanged when only p_o moves)
    logit = lambda v: np.log(np.asarray(v, np.float64) / (1 - np.asarray(v, np.float64)))
    assert max_diff(logit(g1[gate]) - logit(g0[gate]), 2.0 * np.asarray(looked_at)) <= 1e-4
    for other in {"i", "f", "o"} - {gate}:
        if not (gate in "if" and other == "o"):  # o depends on c_t, which i and f change
            assert max_diff(g1[other], g0[other]) == 0.0


# ----------------------------------------------------------------------------- mingru, minlstm


def test_min_candidate_activation_g():
    from rnnlab.cells.minimal import g

    v = jnp.asarray([-30.0, -2.0, -1e-6, 0.0, 1e-6, 2.0, 100.0])
    np.testing.assert_allclose(np.asarray(g(v)), np_g(np.asarray(v, np.float64)), rtol=1e-6, atol=1e-12)
    assert float(g(jnp.float32(0.0))) == 0.5 and float(jnp.min(g(v))) > 0.0  # continuous at 0, positive
    assert float(jax.grad(g)(jnp.float32(3.0))) == 1.0
    assert abs(float(jax.grad(g)(jnp.float32(-1.0))) - _sig(-1.0) * (1 - _sig(-1.0))) <= 1e-7


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_min_gates_ignore_the_state(name):
    """Gates and candidate come from x only: two different carries give the same gates, and
    h' = a * h + b with a in (0, 1) the documented coefficient (1 - z, or f / (f + i))."""
    cell = get_cell(name)
    p = cell.init(jax.random.key(9), I, H, init_scale=0.5)
    rng = np.random.default_rng(9)
    xp = cell.project(p, jnp.asarray(rng.normal(size=(B, I)), jnp.float32))
    c1, c2 = random_carry(cell, B, H, rng), random_carry(cell, B, H, rng)
    n1, h1, g1 = cell.inspect(p, c1, xp)
    n2, h2, g2 = cell.inspect(p, c2, xp)
    for k in cell.gate_names:
        assert max_diff(g1[k], g2[k]) == 0.0
    a = 1 - g1["z"] if name == "mingru" else g1["f"] / (g1["f"] + g1["i"])
    assert max_diff((h1 - h2) / (c1.h - c2.h), a) <= 1e-4
    assert 0.0 < float(a.min()) and float(a.max()) < 1.0


def test_minlstm_normalisation_is_finite_at_extremes():
    """f / (f + i) written naively is 0 / 0 when both sigmoids underflow; the cell's
    sigmoid(log f - log i) form stays finite and exact (f = i -> 1/2; f >> i -> 1)."""
    cell = get_cell("minlstm")
    cand = jnp.full((1, H), 0.25)  # kg: g(0.25) = 0.75
    for kf, ki, f_norm in ((-200.0, -200.0, 0.5), (-150.0, -250.0, 1.0), (-250.0, -150.0, 0.0), (80.0, 80.0, 0.5)):
        xp = jnp.concatenate([cand, jnp.full((1, H), kf), jnp.full((1, H), ki)], axis=-1)
        a, b = cell.linear(xp)
        assert np.isfinite(np.asarray(a)).all() and np.isfinite(np.asarray(b)).all()
        assert max_diff(a, f_norm) <= 1e-6 and max_diff(b, (1 - f_norm) * 0.75) <= 1e-6
