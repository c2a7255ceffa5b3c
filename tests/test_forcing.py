"""Training modes (forcing.py): schedules against their formulas; the sampled path at eps = 1 equals
teacher forcing (loss, gradients, carries); eps = 0 never feeds gold after the first token; the
fraction of gold fed matches eps; soft sampling is differentiable; one compiled step for every eps."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.cells import CELLS
from rnnlab.config import base_config, validate
from rnnlab.forcing import (Feedback, eps_schedule, feedback_forward, free_run, make_loss_fn, make_schedule,
                            sampled_loss, teacher_forcing_loss)
from rnnlab.model import LanguageModel, initial_carries

ALL_CELLS = sorted(CELLS)
V, H, E, L = 11, 8, 6, 2


def schedule_cfg(kind, **kw):
    c = base_config()
    c.train.schedule.kind = kind
    for k, v in kw.items():
        c.train.schedule[k] = v
    return c


def tiny(cell="lstm", dropout=0.0, tie=False, B=3, T=7, seed=0, layers=L):
    m = LanguageModel(vocab_size=V, cell=cell, hidden_size=H, num_layers=layers, embed_size=0 if tie else E,
                      dropout=dropout, tie_weights=tie, init_scheme="uniform", init_scale=0.5)
    kx, ky, kp = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.randint(kx, (B, T), 0, V)
    y = jax.random.randint(ky, (B, T), 0, V)
    rng = np.random.default_rng(seed)
    carries = tuple(type(z)(*[jnp.asarray(rng.uniform(-0.5, 0.5, f.shape), jnp.float32) for f in z])
                    for z in initial_carries(cell, layers, B, H))
    params = m.init(kp, x, carries)["params"]
    return m, params, carries, x, y


# jitted once per (model, feedback): eager op-by-op execution of the scan is slow on CPU
ff = jax.jit(feedback_forward, static_argnums=(0, 6))


def max_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


# ----------------------------------------------------------------------------- schedules
STEPS = np.array([0, 1, 10, 100, 500, 1000, 5000, 20000])


@pytest.mark.parametrize("kind,kw,formula", [
    ("constant", {"eps": 0.6}, lambda i: np.full(i.shape, 0.6)),
    ("linear", {"start": 1.0, "slope": 1e-3, "eps_min": 0.1}, lambda i: np.maximum(0.1, 1.0 - 1e-3 * i)),
    ("linear", {"start": 0.9, "slope": 2e-4, "eps_min": 0.0}, lambda i: np.maximum(0.0, 0.9 - 2e-4 * i)),
    ("exponential", {"base": 0.999, "eps_min": 0.0}, lambda i: 0.999 ** i),
    ("exponential", {"base": 0.99, "eps_min": 0.2}, lambda i: np.maximum(0.2, 0.99 ** i)),
    ("inverse_sigmoid", {"k": 100.0, "eps_min": 0.0}, lambda i: 100.0 / (100.0 + np.exp(i / 100.0))),
    ("inverse_sigmoid", {"k": 1000.0, "eps_min": 0.05}, lambda i: np.maximum(0.05, 1000.0 / (1000.0 + np.exp(i / 1000.0)))),
])
def test_schedule_values_match_formulas(kind, kw, formula):
    s = make_schedule(schedule_cfg(kind, **kw).train.schedule)
    got = np.array([float(s(jnp.int32(i))) for i in STEPS])
    want = formula(STEPS.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # monotone non-increasing, in [eps_min, 1]
    dense = np.array([float(s(i)) for i in range(0, 20001, 250)])
    assert np.all(np.diff(dense) <= 1e-7)
    assert dense.min() >= kw.get("eps_min", 0.0) - 1e-7 and dense.max() <= 1.0 + 1e-7


def test_schedule_endpoints():
    lin = make_schedule(schedule_cfg("linear", start=1.0, slope=1e-3, eps_min=0.25).train.schedule)
    assert float(lin(0)) == 1.0 and float(lin(750)) == pytest.approx(0.25) and float(lin(10**6)) == pytest.approx(0.25)
    exp = make_schedule(schedule_cfg("exponential", base=0.99).train.schedule)
    assert float(exp(0)) == 1.0 and float(exp(10**5)) == pytest.approx(0.0, abs=1e-12)
    inv = make_schedule(schedule_cfg("inverse_sigmoid", k=50.0).train.schedule)
    assert float(inv(0)) == pytest.approx(50 / 51)  # k / (k + 1) at i = 0
    assert float(inv(50 * math.log(50))) == pytest.approx(0.5, abs=1e-5)  # the midpoint i = k ln k
    assert float(inv(10**6)) == 0.0  # exp overflows to inf: eps 0, never NaN


def test_modes_and_warmup():
    c = schedule_cfg("linear", start=0.8, slope=0.1, eps_min=0.0, warmup_steps=5)
    c.train.mode = "scheduled_sampling"
    f = eps_schedule(c)
    assert [float(f(i)) for i in range(5)] == [1.0] * 5  # pure teacher forcing first
    np.testing.assert_allclose([float(f(i)) for i in range(5, 14)], [0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
                               atol=1e-6)  # then the schedule from its own step 0
    c.train.mode = "always_sampling"
    assert [float(f(i)) for f in [eps_schedule(c)] for i in (0, 4, 5, 100)] == [1.0, 1.0, 0.0, 0.0]
    c.train.mode = "teacher_forcing"
    assert float(eps_schedule(c)(10**6)) == 1.0


@pytest.mark.parametrize("field,value", [("train.schedule.kind", "cosine"), ("train.coin", "batch"),
                                         ("train.feedback", "topk"), ("train.schedule.k", 0.5),
                                         ("train.schedule.base", 1.5), ("train.schedule.eps", -0.1),
                                         ("train.feedback_temperature", 0.0), ("eval.exposure_ks", (1, -2)),
                                         ("train.sampler", "multinomial")])
def test_bad_fields_are_one_line_errors(field, value):
    c = base_config()
    sec, name = field.rsplit(".", 1)
    node = c
    for part in sec.split("."):
        node = node[part]
    node[name] = value
    with pytest.raises(RnnlabError) as e:
        validate(c)
    assert name in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------- eps = 1 is teacher forcing
FEEDBACKS = (Feedback("sample"), Feedback("argmax"), Feedback("soft", 0.5))


@pytest.mark.parametrize("cell,dropout,tie,kinds", [(c, 0.0, False, (0,)) for c in ALL_CELLS if c != "lstm"] +
                         [("lstm", 0.0, False, (0, 1, 2)), ("lstm", 0.3, True, (0, 1, 2)), ("gru", 0.3, True, (2,))])
def test_eps_one_equals_teacher_forcing(cell, dropout, tie, kinds):
    """Loss, gradients and carries of the sampled path at eps = 1 (each feedback kind) equal the
    teacher-forcing path's, with dropout too (the masks are drawn the same way)."""
    m, params, carries, x, y = tiny(cell, dropout, tie)
    key = jax.random.key(7)

    @jax.jit
    def both(p):
        tf = jax.value_and_grad(lambda q: teacher_forcing_loss(m, q, carries, x, y, key), has_aux=True)(p)
        ss = [jax.value_and_grad(lambda q, fb=FEEDBACKS[i]: sampled_loss(m, q, carries, x, y, key, jnp.float32(1.0), fb),
                                 has_aux=True)(p) for i in kinds]
        return tf, ss

    ((l1, (c1, _)), g1), ss = both(params)
    for (l2, (c2, m2)), g2 in ss:
        assert abs(float(l1) - float(l2)) <= 1e-6
        assert max_diff(g1, g2) <= 1e-6
        assert max_diff(c1, c2) <= 1e-6
        assert float(m2["gold_fed"]) == float(m2["fed_count"]) == x.shape[0] * (x.shape[1] - 1)
    if dropout:  # the masks really drop something: the loss differs from the deterministic one
        l0 = teacher_forcing_loss(m.clone(dropout=0.0), params, carries, x, y, key)[0]
        assert abs(float(l0) - float(l1)) > 1e-4


# ----------------------------------------------------------------------------- eps = 0 never feeds gold
@pytest.mark.parametrize("kind", ["sample", "argmax", "soft"])
def test_eps_zero_never_feeds_gold_after_first_token(kind):
    m, params, carries, x, _ = tiny("gru", B=4, T=9)
    poisoned = x.at[:, 1:].set((x[:, 1:] + 5) % V)  # every gold input after the first changed
    key = jax.random.key(3)
    fb = Feedback(kind, 1.0)
    lg1, c1, fed1, gold1 = ff(m, params, carries, x, key, jnp.float32(0.0), fb)
    lg2, c2, fed2, gold2 = ff(m, params, carries, poisoned, key, jnp.float32(0.0), fb)
    assert max_diff(lg1, lg2) == 0.0 and max_diff(c1, c2) == 0.0
    np.testing.assert_array_equal(np.asarray(fed1), np.asarray(fed2))
    np.testing.assert_array_equal(np.asarray(fed1[:, 0]), np.asarray(x[:, 0]))  # the first input is gold
    assert bool(gold1[:, 0].all()) and not bool(gold1[:, 1:].any())
    # and the gold inputs do matter when eps = 1 (the poisoning is visible there)
    lg3, *_ = ff(m, params, carries, poisoned, key, jnp.float32(1.0), fb)
    assert max_diff(lg1, lg3) > 1e-3
    if kind == "argmax":  # the fed token at t is the argmax of the logits at t - 1
        np.testing.assert_array_equal(np.asarray(fed1[:, 1:]), np.asarray(jnp.argmax(lg1[:, :-1], -1)))


@pytest.mark.parametrize("eps", [0.1, 0.5, 0.8])
def test_gold_fraction_matches_eps(eps):
    m, params, carries, x, _ = tiny("rnn", B=64, T=40, layers=1)
    _, _, _, gold = ff(m, params, carries, x, jax.random.key(11), jnp.float32(eps), Feedback())
    n = 64 * 39
    frac = float(gold[:, 1:].mean())
    assert abs(frac - eps) < 4.5 * math.sqrt(eps * (1 - eps) / n)


def test_coin_per_sequence():
    m, params, carries, x, _ = tiny("rnn", B=400, T=6, layers=1)
    _, _, _, gold = ff(m, params, carries, x, jax.random.key(2), jnp.float32(0.3),
                                     Feedback(coin="sequence"))
    g = np.asarray(gold[:, 1:])
    assert (g == g[:, :1]).all()  # one coin per row
    assert abs(g[:, 0].mean() - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / 400)


@pytest.mark.parametrize("sampler", ["gumbel", "inverse_cdf"])
def test_sampled_tokens_follow_the_softmax(sampler):
    """eps = 0 with one time step of feedback: the fed token's frequencies match softmax(logits / T),
    with either sampler (train.sampler)."""
    m, params, carries, _, _ = tiny("lstm", B=4000, T=2, layers=1)
    x = jnp.zeros((4000, 2), jnp.int32)
    for temp in (1.0, 0.5):
        fb = Feedback("sample", temp, sampler=sampler)
        lg, _, fed, _ = ff(m, params, carries, x, jax.random.key(5), jnp.float32(0.0), fb)
        p = np.asarray(jax.nn.softmax(lg[:, 0] / temp, -1)).mean(0)  # rows differ only by their carry
        freq = np.bincount(np.asarray(fed[:, 1]), minlength=V) / 4000
        assert np.abs(freq - p).max() < 4.5 * math.sqrt(p.max() * (1 - p.max()) / 4000)


# ----------------------------------------------------------------------------- soft sampling
def test_soft_sampling_is_differentiable_finite_differences():
    m, params, carries, x, y = tiny("lstm", B=2, T=6)
    key = jax.random.key(4)
    loss = jax.jit(lambda p: sampled_loss(m, p, carries, x, y, key, jnp.float32(0.0), Feedback("soft", 1.0))[0])
    g = jax.jit(jax.grad(loss))(params)
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(0)
    for name in ("embedding", "readout"):  # directions in the fed embedding table and in the readout
        d = [jnp.asarray(rng.normal(size=l.shape), jnp.float32) if name in jax.tree_util.keystr(path) else jnp.zeros_like(l)
             for (path, l) in jax.tree_util.tree_flatten_with_path(params)[0]]
        d = jax.tree_util.tree_unflatten(tree, d)
        h = 1e-2
        plus = jax.tree_util.tree_map(lambda p, v: p + h * v, params, d)
        minus = jax.tree_util.tree_map(lambda p, v: p - h * v, params, d)
        fd = (float(loss(plus)) - float(loss(minus))) / (2 * h)
        an = sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(d)))
        assert abs(fd - an) <= 2e-3 * max(1.0, abs(an))
    # the gradient flows through the fed mix: the readout gets gradient from positions t >= 1 via the
    # next step's input, so it differs from the gradient with the mix held fixed (hard argmax feedback
    # with the same argmax tokens would see no such path)
    g_hard = jax.jit(jax.grad(lambda p: sampled_loss(m, p, carries, x, y, key, jnp.float32(0.0), Feedback("argmax"))[0]))(params)
    assert max_diff(g["readout"], g_hard["readout"]) > 1e-4


# ----------------------------------------------------------------------------- the jitted step
def test_train_step_traces_eps_once():
    from rnnlab.train import create_train_state, make_optimizer, make_train_step

    c = base_config()
    c.model.cell, c.model.hidden_size, c.model.num_layers, c.model.embed_size = "gru", H, 1, E
    c.train.batch_size, c.train.bptt = 3, 5
    c.train.mode = "scheduled_sampling"
    c.train.schedule.kind = "linear"
    c.train.schedule.start, c.train.schedule.slope = 1.0, 0.25
    c.train.schedule.warmup_steps = 2
    c.train.optimizer, c.train.lr = "adam", 1e-3
    m = LanguageModel(vocab_size=V, cell="gru", hidden_size=H, num_layers=1, embed_size=E)
    tx, _ = make_optimizer(c, 10)
    state = create_train_state(c, m, tx, jax.random.key(0))
    step = jax.jit(make_train_step(m, tx, c))
    x = jax.random.randint(jax.random.key(1), (3, 5), 0, V)
    eps_seen, gold_seen = [], []
    for _ in range(7):
        state, metrics = step(state, (x, x), jax.random.key(2))
        eps_seen.append(float(metrics["eps"]))
        gold_seen.append(float(metrics["gold_fed"]) / float(metrics["fed_count"]))
    np.testing.assert_allclose(eps_seen, [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    assert gold_seen[:3] == [1.0, 1.0, 1.0] and gold_seen[-1] == 0.0
    assert step._cache_size() == 1  # every eps (and the warm-up branch) in one compiled program


def test_loss_fn_teacher_forcing_metrics():
    m, params, carries, x, y = tiny("lstm")
    c = base_config()
    loss, (_, met) = make_loss_fn(m, c)(params, carries, (x, y), jax.random.key(0), jnp.int32(0))
    assert float(met["count"]) == x.size and float(met["eps"]) == 1.0
    assert float(met["nll_sum"]) / x.size == pytest.approx(float(loss), rel=1e-6)


# ----------------------------------------------------------------------------- free running
def test_free_run_greedy_matches_sampling_generate():
    """Two implementations of generation agree: the feedback path at eps = 0 and sampling.generate."""
    from rnnlab.sampling import generate

    m, params, _, x, _ = tiny("lstm", B=3, T=5)
    toks, logits = free_run(m, params, x, 12, jax.random.key(0), greedy=True)
    ref, ref_logits = generate(m, params, x, 12, jax.random.key(0), greedy=True, return_logits=True)
    np.testing.assert_array_equal(np.asarray(toks), np.asarray(ref))
    assert max_diff(logits, ref_logits) < 1e-5


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_sampling_unroll_changes_no_number(cell):
    """train.sampling_unroll only unrolls the token pass of two-pass hard feedback: the fed tokens, the
    loss and the gradients are bit for bit those of the model's own unroll (1)."""
    m, params, carries, x, y = tiny(cell, dropout=0.2, B=4, T=9)
    key = jax.random.key(9)

    @jax.jit
    def grads(p):
        return [jax.value_and_grad(lambda q, u=u: sampled_loss(m, q, carries, x, y, key, jnp.float32(0.4),
                                                               Feedback(unroll=u))[0])(p) for u in (0, 3, 9)]

    (l0, g0), *rest = grads(params)
    for lu, gu in rest:
        assert float(lu) == float(l0) and max_diff(g0, gu) == 0.0
    feds = [ff(m, params, carries, x, key, jnp.float32(0.4), Feedback(unroll=u))[2] for u in (0, 4)]
    np.testing.assert_array_equal(np.asarray(feds[0]), np.asarray(feds[1]))
