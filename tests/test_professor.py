"""Professor forcing (seq2seq/professor.py): Lamb's gates reach exactly the parameters they should
(the discriminator's term only the discriminator, the adversarial term only the model, each gated);
the discriminator's optimizer leaves it untouched while gated off; two optimizers in one step; the
discriminator reads padded sequences through its mask; the language model trains with it and
resumes bit for bit."""
from __future__ import annotations

import json
import types
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnnlab.config import base_config, validate
from rnnlab.forcing import Feedback, forward_sampled_loss_one_pass
from rnnlab.seq2seq.professor import (DISC, Discriminator, Settings, attach, generator_params, professor_loss_fn,
                                      skip_zero_updates)
from rnnlab.train import make_train_step, train_and_evaluate

from _tiny import interrupted_run, tiny_config
from test_seq2seq import B, T, TLENS, assert_trees_close, tiny


def pf_cfg(**pf):
    c = base_config()
    c.train.mode = "professor_forcing"
    c.train.optimizer, c.train.lr, c.train.clip_norm = "sgd", 0.1, 0.0
    c.train.professor.hidden_size = 5
    for k, v in pf.items():
        c.train.professor[k] = v
    return c


def zero(tree) -> bool:
    return all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree_util.tree_leaves(tree))


@pytest.fixture(scope="module")
def pf():
    """A 1-layer GRU encoder-decoder with its discriminator; ``grads(below, above, weight)`` -> (loss,
    metrics, gradients) of the professor-forcing loss with those gates' thresholds (traced: one compiled
    program for all), ``nll_grads()`` the gradients of the teacher-forced NLL alone."""
    m, _, batch = tiny("gru", dropout=0.2, layers=1)
    cfg = pf_cfg()
    model, _ = attach(m, optax.sgd(0.1), cfg)
    params = model.init_params(jax.random.key(0), cfg)
    fwd, key = model.forward(), jax.random.key(3)

    @partial(jax.jit, static_argnames="reverse")
    def grads(below, above, weight, reverse=False):
        s = Settings(weight, reverse, below, above, Feedback())
        f = lambda p: professor_loss_fn(fwd, model.discriminator, s)(p, (), batch, key, jnp.int32(0))  # noqa: E731
        (loss, (_, metrics)), g = jax.value_and_grad(f, has_aux=True)(params)
        return loss, metrics, g

    @jax.jit
    def nll_grads():
        f = lambda p: forward_sampled_loss_one_pass(  # noqa: E731
            fwd, p, (), batch[2], batch[:2], batch[3], batch[4], key, jnp.float32(1.0), Feedback())[0]
        return jax.grad(f)(generator_params(params))

    return types.SimpleNamespace(grads=lambda *a, **k: jax.device_get(grads(*map(jnp.float32, a), **k)),
                                 nll_grads=nll_grads)


def test_gates_reach_only_their_own_parameters(pf):
    # discriminator always trains, the adversarial term never reaches the model
    _, m, g = pf.grads(1.0, 1.0, 1.0)
    assert float(m["disc_trained"]) == 1.0 and float(m["adv_on"]) == 0.0 and float(m["disc_count"]) == 2 * B
    assert 0 <= float(m["disc_right"]) <= 2 * B and float(m["count"]) == TLENS.sum()
    nll = pf.nll_grads()
    assert_trees_close(generator_params(g), nll, rtol=1e-5, atol=1e-7)
    assert not zero(g[DISC])
    # discriminator gated off: its gradient is exactly zero (and the model's still the NLL's)
    _, m0, g0 = pf.grads(0.0, 1.0, 1.0)
    assert float(m0["disc_trained"]) == 0.0 and zero(g0[DISC])
    assert_trees_close(generator_params(g0), nll, rtol=1e-5, atol=1e-7)
    # adversarial term on: the model's gradient moves away from the NLL's; the discriminator's does not change
    _, m_on, g_on = pf.grads(1.0, 0.0, 1.0)
    assert float(m_on["adv_on"]) == 1.0 and float(m_on["adv_sum"]) > 0
    diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(generator_params(g_on)),
                                                              jax.tree_util.tree_leaves(nll)))
    assert diff > 1e-6
    assert_trees_close(g_on[DISC], g[DISC], rtol=0, atol=0)
    # weight 0: the adversarial term counts for nothing even when on
    _, _, g_w0 = pf.grads(1.0, 0.0, 0.0)
    assert_trees_close(generator_params(g_w0), nll, rtol=1e-5, atol=1e-7)
    # the reverse term (teacher-forced states should look free-running) adds to the adversarial loss
    _, m_rev, _ = pf.grads(1.0, 0.0, 1.0, reverse=True)
    assert float(m_rev["adv_sum"]) > float(m_on["adv_sum"]) > 0


def test_skip_zero_updates_keeps_parameters_and_state():
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    inner = optax.adam(0.1)
    tx = skip_zero_updates(inner)
    g = {"w": jnp.array([0.5, -1.0, 2.0])}
    s0 = tx.init(params)
    u1, s1 = tx.update(g, s0, params)
    v1, r1 = inner.update(g, inner.init(params), params)
    assert_trees_close((u1, s1), (v1, r1), rtol=0, atol=0)  # a real gradient: adam's own step
    u2, s2 = tx.update(jax.tree_util.tree_map(jnp.zeros_like, g), s1, params)
    assert zero(u2)
    assert_trees_close(s2, s1, rtol=0, atol=0)  # the moments and the count stay
    _, r2 = inner.update(jax.tree_util.tree_map(jnp.zeros_like, g), r1, params)
    assert int(r2[0].count) == 2 and not np.allclose(np.asarray(r2[0].mu["w"]), np.asarray(r1[0].mu["w"]))


def test_two_optimizers_in_one_step():
    cfg = pf_cfg(train_below=1.0, adversarial_above=1.0, lr=0.01)
    m, _, batch = tiny("lstm", layers=1)
    model, tx = attach(m, optax.sgd(0.1), cfg)
    params = model.init_params(jax.random.key(0), cfg)
    from rnnlab.train import TrainState

    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), carries=())
    new, metrics = jax.jit(make_train_step(model, tx, cfg))(state, batch, jax.random.key(1))
    f = lambda p: model.make_loss_fn(cfg)(p, (), batch, jax.random.fold_in(jax.random.key(1), 0), 0)[0]  # noqa: E731
    g = jax.grad(f)(params)
    for a, b, d in zip(jax.tree_util.tree_leaves(generator_params(new.params)),
                       jax.tree_util.tree_leaves(generator_params(params)), jax.tree_util.tree_leaves(generator_params(g))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b - 0.1 * d), rtol=1e-5, atol=1e-6)  # sgd(0.1)
    for a, b, d in zip(jax.tree_util.tree_leaves(new.params[DISC]), jax.tree_util.tree_leaves(params[DISC]),
                       jax.tree_util.tree_leaves(g[DISC])):
        big = np.abs(np.asarray(d)) > 1e-4  # adam's first step: -lr * g / (|g| + eps) = -lr sign(g)
        np.testing.assert_allclose(np.asarray(a - b)[big], -0.01 * np.sign(np.asarray(d))[big], rtol=1e-3)
    assert float(metrics["disc_trained"]) == 1.0


def test_discriminator_ignores_padding():
    d = Discriminator(in_size=3, hidden_size=4)
    rng = np.random.default_rng(0)
    hs = jnp.asarray(rng.normal(size=(2, 6, 3)), jnp.float32)
    mask = jnp.asarray([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], jnp.float32)
    p = d.init(jax.random.key(0), hs, mask)["params"]
    out = d.apply({"params": p}, hs, mask)
    junk = hs.at[0, 3:].set(7.0)
    assert float(jnp.abs(d.apply({"params": p}, junk, mask) - out).max()) == 0.0
    alone = d.apply({"params": p}, hs[:1, :3], mask[:1, :3])
    assert float(alone[0]) == pytest.approx(float(out[0]), abs=1e-6)


def test_professor_forcing_config_errors():
    from rnnlab import RnnlabError

    for field, value, match in (("lr", 0.0, "train.professor.lr"), ("train_below", 1.5, "train_below"),
                                ("hidden_size", 0, "hidden_size")):
        c = pf_cfg(**{field: value})
        with pytest.raises(RnnlabError, match=match):
            validate(c)


@pytest.mark.slow
def test_language_model_professor_forcing_resumes_bit_for_bit(monkeypatch, tmp_path):
    """Reber, 2 x 24 steps, checkpoint every 5: killed at step 13, resumed = never killed."""
    cfg = lambda: tiny_config(**{"train.mode": "professor_forcing"})  # noqa: E731
    full = train_and_evaluate(cfg(), tmp_path / "full")
    interrupted_run(monkeypatch, tmp_path / "cut", "step", 13, cfg())
    resumed = train_and_evaluate(cfg(), tmp_path / "cut")
    assert resumed["params_sha256"] == full["params_sha256"] and resumed["test_ppl"] == full["test_ppl"]
    lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    disc = [x for x in lines if "train/disc_acc" in x]
    assert disc and all(0.0 <= x["train/disc_acc"] <= 1.0 and x["train/disc_trained"] in (0.0, 1.0) for x in disc)
    cut = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    same = lambda rows: [(x["step"], x.get("train/loss"), x.get("train/disc_acc")) for x in rows]  # noqa: E731
    assert same(cut) == same(lines)  # the resumed run logged the same numbers
