"""The language model: shapes, dropout, weight tying, init schemes, forget bias, and its output
against a manual embed -> python_unroll -> readout computation (jit, bf16 included)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.cells import get_cell
from rnnlab.evaluate import token_nll
from rnnlab.model import LanguageModel, count_params, initial_carries
from rnnlab.unroll import python_unroll

CELLS = ["rnn", "gru", "gru_cho", "lstm"]
V, H, E, L, B, T = 13, 6, 5, 2, 3, 7


def make(cell="lstm", **kw):
    """model, params, carries, tokens [B, T] for a small model."""
    kw = {"vocab_size": V, "cell": cell, "hidden_size": H, "num_layers": L, "embed_size": E, **kw}
    model = LanguageModel(**kw)
    carries = initial_carries(cell, kw["num_layers"], B, kw["hidden_size"], kw.get("forget_bias", 1.0))
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, size=(B, T)), jnp.int32)
    params = model.init(jax.random.key(0), tokens, carries)["params"]
    return model, params, carries, tokens


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def random_carries(cell, batch=B, hidden=H, layers=L, seed=1):
    rng = np.random.default_rng(seed)
    zeros = initial_carries(cell, layers, batch, hidden)
    return tuple(type(z)(*[jnp.asarray(rng.uniform(-0.8, 0.8, f.shape), jnp.float32) for f in z]) for z in zeros)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes(cell):
    model, params, carries, tokens = make(cell)
    logits, new = model.apply({"params": params}, tokens, carries)
    assert logits.shape == (B, T, V) and logits.dtype == jnp.float32
    assert len(new) == L
    for c_in, c_out in zip(carries, new):
        assert type(c_in) is type(c_out)
        for a, b in zip(c_in, c_out):
            assert a.shape == b.shape == (B, H)
    assert params["embedding"]["embedding"].shape == (V, E)
    assert params["layer_0"]["w_i"].shape[0] == E and params["layer_1"]["w_i"].shape[0] == H
    assert params["readout"]["kernel"].shape == (H, V) and params["readout"]["bias"].shape == (V,)


@pytest.mark.parametrize("cell", CELLS)
def test_matches_manual_computation(cell):
    """embedding lookup -> cells through python_unroll (cell.step, no scan) -> x @ kernel + bias."""
    model, params, _, tokens = make(cell, dropout=0.0)
    carries = random_carries(cell)
    logits, new = model.apply({"params": params}, tokens, carries)

    emb = np.asarray(params["embedding"]["embedding"])
    xs = jnp.asarray(emb[np.asarray(tokens).T])  # [T, B, E]
    cell_fns = get_cell(cell)
    layers = [params[f"layer_{i}"] for i in range(L)]
    ref_carries, hs = python_unroll(cell_fns, layers, carries, xs)
    k, b = np.asarray(params["readout"]["kernel"], np.float64), np.asarray(params["readout"]["bias"], np.float64)
    ref = np.einsum("tbh,hv->btv", np.asarray(hs, np.float64), k) + b[None, None, :]
    assert max_diff(logits, ref) <= 1e-5
    for c, r in zip(new, ref_carries):
        for a, bb in zip(c, r):
            assert max_diff(a, bb) <= 1e-5
    assert max_diff(logits, 0.0) > 1e-3  # not a degenerate all-zero output


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_jit_equals_eager(cell):
    model, params, _, tokens = make(cell)
    carries = random_carries(cell)
    eager, c_eager = model.apply({"params": params}, tokens, carries)
    jitted, c_jit = jax.jit(lambda p, x, c: model.apply({"params": p}, x, c))(params, tokens, carries)
    assert max_diff(eager, jitted) <= 1e-5
    for a, b in zip(jax.tree_util.tree_leaves(c_eager), jax.tree_util.tree_leaves(c_jit)):
        assert max_diff(a, b) <= 1e-5


def test_dropout_only_when_training():
    model, params, carries, tokens = make("lstm", dropout=0.5)
    run = jax.jit(lambda train, key: model.apply({"params": params}, tokens, carries, train=train,
                                                  rngs={"dropout": key})[0], static_argnums=0)
    apply = lambda train, key=None: run(train, jax.random.key(0) if key is None else key)
    ev1, ev2 = apply(False), apply(False)
    assert max_diff(ev1, ev2) == 0.0  # deterministic evaluation
    # evaluation equals the same parameters in a model without dropout
    nodrop = LanguageModel(vocab_size=V, cell="lstm", hidden_size=H, num_layers=L, embed_size=E, dropout=0.0)
    assert max_diff(ev1, nodrop.apply({"params": params}, tokens, carries)[0]) == 0.0
    tr1, tr1b, tr2 = apply(True, jax.random.key(1)), apply(True, jax.random.key(1)), apply(True, jax.random.key(2))
    assert max_diff(tr1, tr1b) == 0.0  # same key, same mask
    assert max_diff(tr1, tr2) > 1e-3  # another key, another mask
    assert max_diff(tr1, ev1) > 1e-3  # training applies dropout
    # dropout 0 in training mode is the identity
    tr0 = nodrop.apply({"params": params}, tokens, carries, train=True, rngs={"dropout": jax.random.key(3)})[0]
    assert max_diff(tr0, ev1) == 0.0


def test_dropout_rate_on_embedding():
    """About a fraction p of the embedding outputs are zeroed and the rest scaled by 1 / (1 - p)."""
    p = 0.5
    model = LanguageModel(vocab_size=V, cell="rnn", hidden_size=64, num_layers=1, dropout=p)
    carries = initial_carries("rnn", 1, 4, 64)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, size=(4, 50)), jnp.int32)
    params = model.init(jax.random.key(0), tokens, carries)["params"]
    clean = model.apply({"params": params}, tokens, method=lambda m, x: m.embed(x, train=False))
    noisy = model.apply({"params": params}, tokens, method=lambda m, x: m.embed(x, train=True),
                        rngs={"dropout": jax.random.key(5)})
    clean, noisy = np.asarray(clean), np.asarray(noisy)
    zero = noisy == 0.0
    assert abs(zero.mean() - p) < 0.03  # 12,800 values
    np.testing.assert_allclose(noisy[~zero], clean[~zero] / (1 - p), rtol=1e-6)


def test_weight_tying_shares_the_embedding():
    H2 = 6
    kw = dict(vocab_size=V, cell="gru", hidden_size=H2, num_layers=1, embed_size=0)
    tied, untied = LanguageModel(tie_weights=True, **kw), LanguageModel(tie_weights=False, **kw)
    carries = initial_carries("gru", 1, B, H2)
    tokens = jnp.asarray([[0, 1, 2, 3]] * B, jnp.int32)  # only ids 0..3 are ever fed in
    pt = tied.init(jax.random.key(0), tokens, carries)["params"]
    pu = untied.init(jax.random.key(0), tokens, carries)["params"]
    assert "readout" not in pt and pt["readout_bias"].shape == (V,)
    assert count_params(pu) - count_params(pt) == V * H2  # the kernel is gone, the bias stays

    # logits = h @ embedding^T + bias
    pt = dict(pt, readout_bias=jnp.linspace(-1.0, 1.0, V))
    logits, new = tied.apply({"params": pt}, tokens, carries)
    hs = new[0].h  # the last step's hidden state of the single layer
    emb = np.asarray(pt["embedding"]["embedding"], np.float64)
    ref = np.asarray(hs, np.float64) @ emb.T + np.asarray(pt["readout_bias"], np.float64)[None, :]
    assert max_diff(logits[:, -1], ref) <= 1e-5

    # the readout sends gradient into embedding rows that are never fed in (ids 4..V-1)
    targets = jnp.asarray(np.random.default_rng(1).integers(0, V, size=tokens.shape), jnp.int32)

    def loss(model, p):
        return token_nll(model.apply({"params": p}, tokens, carries)[0], targets).mean()

    gt = jax.jit(jax.grad(lambda p: loss(tied, p)))(pt)["embedding"]["embedding"]
    gu = jax.jit(jax.grad(lambda p: loss(untied, p)))(pu)["embedding"]["embedding"]
    assert float(jnp.abs(gu[4:]).max()) == 0.0  # untied: unseen rows get nothing
    assert float(jnp.abs(gt[4:]).min(axis=1).max()) > 0.0 and float(jnp.abs(gt[4:]).sum()) > 1e-4


def test_tie_weights_needs_embed_equal_hidden():
    with pytest.raises(RnnlabError, match="tie_weights") as e:
        make("lstm", tie_weights=True, embed_size=E)  # E != H
    assert "\n" not in str(e.value) and str(E) in str(e.value) and str(H) in str(e.value)
    make("lstm", tie_weights=True, embed_size=H)  # equal sizes are fine


@pytest.mark.parametrize("cell", CELLS)
def test_init_uniform_bounds(cell):
    s = 0.05
    _, params, _, _ = make(cell, init_scheme="uniform", init_scale=s, forget_bias=None)
    leaves = jax.tree_util.tree_leaves_with_path(params)
    assert len(leaves) == 1 + 4 * L + 2  # embedding, 4 arrays per layer, readout kernel and bias
    for path, leaf in leaves:
        a = np.abs(np.asarray(leaf))
        assert a.max() <= s, jax.tree_util.keystr(path)
        if a.size >= 20:  # the bound is reached, not a smaller one
            assert a.max() > 0.75 * s, jax.tree_util.keystr(path)


@pytest.mark.parametrize("cell", CELLS)
def test_init_pytorch_bounds(cell):
    Hb = 16
    _, params, _, _ = make(cell, hidden_size=Hb, init_scheme="pytorch", forget_bias=None)
    bound = 1.0 / np.sqrt(Hb)
    for i in range(L):
        for k, leaf in params[f"layer_{i}"].items():
            a = np.abs(np.asarray(leaf))
            assert a.max() <= bound and a.max() > 0.8 * bound, (i, k)
    for k in ("kernel", "bias"):
        a = np.abs(np.asarray(params["readout"][k]))
        assert a.max() <= bound and a.max() > 0.5 * bound, k
    emb = np.abs(np.asarray(params["embedding"]["embedding"]))
    assert emb.max() <= 0.1 and emb.max() > 0.075


@pytest.mark.parametrize("fb", [0.0, 0.7, 1.0])
def test_forget_bias_reaches_lstm_params(fb):
    _, params, _, _ = make("lstm", forget_bias=fb, init_scale=0.1)
    for i in range(L):
        p = params[f"layer_{i}"]
        b_i, b_h = np.asarray(p["b_i"]), np.asarray(p["b_h"])
        assert b_i.shape == (4 * H,)
        np.testing.assert_array_equal(b_i[H:2 * H], np.float32(fb))  # gate order i, f, g, o
        np.testing.assert_array_equal(b_h[H:2 * H], 0.0)
        other = np.concatenate([b_i[:H], b_i[2 * H:]])
        assert np.abs(other).max() <= 0.1 and np.abs(other).max() > 0.0


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_bfloat16_matmuls_close_to_fp32(cell):
    _, params, _, tokens = make(cell, init_scale=0.3)
    carries = random_carries(cell)
    f32 = LanguageModel(vocab_size=V, cell=cell, hidden_size=H, num_layers=L, embed_size=E)
    bf16 = LanguageModel(vocab_size=V, cell=cell, hidden_size=H, num_layers=L, embed_size=E, matmul_dtype="bfloat16")
    a, ca = f32.apply({"params": params}, tokens, carries)
    b, cb = jax.jit(lambda p, x, c: bf16.apply({"params": p}, x, c))(params, tokens, carries)
    assert b.dtype == jnp.float32 and all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(cb))
    d = max_diff(a, b)
    assert 0.0 < d <= 0.05  # it really ran in bf16, and stays close
    assert max_diff(a, 0.0) > 0.1
