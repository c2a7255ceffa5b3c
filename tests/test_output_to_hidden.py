"""The output-to-hidden network (output_to_hidden.py): its numpy equations (teacher-forced and free
running), the parallel teacher-forced pass against the sequential loop for every head, scheduled
sampling at eps = 1 against teacher forcing (loss and gradients, with dropout), the two-pass hard
feedback against differentiating the sequential pass, coins, generation, and its errors."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.cells.base import HiddenCarry
from rnnlab.config import base_config, validate
from rnnlab.forcing import Feedback
from rnnlab.output_to_hidden import OutputToHidden, _coins, generate, make_loss_fn, make_model
from rnnlab.model import LanguageModel, initial_carries

B, T, H = 3, 9, 6
TOL = 1e-5
IO = {  # kind -> the model's sizes (kinds.model_io)
    "transduction": {"vocab_size": 3, "num_outputs": 4},
    "tokens": {"vocab_size": 7},
    "frames": {"num_features": 5, "head": "bernoulli"},
}


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def config(mode="teacher_forcing", eps=1.0, feedback="sample", coin="token", dropout=0.0, warmup=0):
    c = base_config()
    c.model.cell, c.model.hidden_size, c.model.num_layers, c.model.dropout = "output_to_hidden", H, 1, dropout
    c.model.init_scale = 0.5
    c.train.mode, c.train.feedback, c.train.coin = mode, feedback, coin
    c.train.schedule.kind, c.train.schedule.eps, c.train.schedule.warmup_steps = "constant", eps, warmup
    return c


def data(kind, seed=0, batch=B, steps=T):
    """(x, y, carries) of a kind: y_t = x_{t+1} for tokens and frames; a random carry for transduction."""
    rng = np.random.default_rng(seed)
    io = IO[kind]
    if kind == "frames":
        seq = rng.integers(0, 2, (batch, steps + 1, io["num_features"])).astype(np.float32)
        x, y = seq[:, :-1], seq[:, 1:]
    elif kind == "tokens":
        seq = rng.integers(0, io["vocab_size"], (batch, steps + 1)).astype(np.int32)
        x, y = seq[:, :-1], seq[:, 1:]
    else:
        x = rng.integers(0, io["vocab_size"], (batch, steps)).astype(np.int32)
        y = rng.integers(0, io["num_outputs"], (batch, steps)).astype(np.int32)
    z = rng.uniform(-0.5, 0.5, (batch, H)).astype(np.float32) if kind == "transduction" else np.zeros((batch, H),
                                                                                                        np.float32)
    return jnp.asarray(x), jnp.asarray(y), (HiddenCarry(jnp.asarray(z)),)


def built(kind, cfg=None, seed=0):
    cfg = cfg or config()
    model = make_model(cfg, IO[kind])
    x, y, carries = data(kind, seed)
    params = model.init(jax.random.key(seed), x, carries)["params"]
    return cfg, model, params, x, y, carries


def numpy_net(p, x, z0, prev):
    """float64 loop: h_t = tanh(W[x_t] + z_t + b), o_t = h_t V + c; z_0 = z0, z_{t+1} = U[prev(t, o_t)]
    (transduction: x int [B, T], prev(t, o_t) -> the class ids fed as o_t)."""
    W, U, b, V, c = (np.asarray(p[k], np.float64) for k in "WUbVc")
    z, outs = np.asarray(z0, np.float64), []
    for t in range(x.shape[1]):
        h = np.tanh(W[x[:, t]] + z + b)
        o = h @ V + c
        outs.append(o)
        z = U[prev(t, o)]
    return np.stack(outs, 1), z


# ----------------------------------------------------------------------------- equations
def test_make_model_builds_it_for_the_cell_name_and_the_language_model_otherwise():
    cfg = config()
    assert isinstance(make_model(cfg, IO["transduction"]), OutputToHidden)
    cfg.model.cell = "gru"
    assert isinstance(make_model(cfg, 7), LanguageModel)
    validate(config())  # the name is a valid model.cell


def test_parameters_are_the_equations_matrices():
    _, model, params, *_ = built("transduction")
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    assert shapes == {"W": (3, H), "U": (4, H), "b": (H,), "V": (H, 4), "c": (4,)}
    assert model.feeds_back and not model.next_input


def test_teacher_forced_pass_equals_numpy_equations():
    _, model, params, x, y, carries = built("transduction")
    logits, (c,) = model.apply({"params": params}, x, carries, outputs=y)
    yn = np.asarray(y)
    ref, z = numpy_net(params, np.asarray(x), carries[0].h, lambda t, o: yn[:, t])
    assert logits.shape == (B, T, 4)
    assert max_diff(logits, ref) <= TOL
    assert max_diff(c.h, z) <= TOL  # the carry is U o_{T-1} = U[y_{T-1}]


def test_free_running_equals_numpy_with_argmax_feedback():
    _, model, params, x, _, carries = built("transduction")
    logits, (c,) = model.apply({"params": params}, x, carries)  # no outputs: it feeds its own labels back
    ref, z = numpy_net(params, np.asarray(x), carries[0].h, lambda t, o: o.argmax(-1))
    assert max_diff(logits, ref) <= TOL and max_diff(c.h, z) <= TOL


def test_language_model_reads_the_current_token_as_the_previous_output():
    """Token streams: o_{t-1} = y_{t-1} = x_t, so h_t = tanh(W[x_t] + U[x_t] + b) (a bigram-like model)."""
    _, model, params, x, y, carries = built("tokens")
    logits, out = model.apply({"params": params}, x, carries)
    W, U, b, V, c = (np.asarray(params[k], np.float64) for k in "WUbVc")
    xn = np.asarray(x)
    ref = np.tanh(W[xn] + U[xn] + b) @ V + c
    assert max_diff(logits, ref) <= TOL
    with_y, _ = model.apply({"params": params}, x, carries, outputs=y)  # the targets give the same inputs
    assert max_diff(with_y, logits) == 0.0
    assert max_diff(out[0].h, 0.0) == 0.0  # its carry is not used


@pytest.mark.parametrize("kind", list(IO))
def test_parallel_teacher_forcing_equals_the_sequential_loop(kind):
    """All coins gold: the sequential scan feeds the same outputs as the one batched pass."""
    _, model, params, x, y, carries = built(kind)
    par, c_par = model.apply({"params": params}, x, carries, outputs=y)
    keys = jax.random.split(jax.random.key(3), T)
    seq, c_seq, fed = model.apply({"params": params}, x, y, carries, jnp.ones((T, B), bool), keys,
                                  method=OutputToHidden.feedback_pass)
    assert par.shape == seq.shape == (B, T, model.out_size)
    assert max_diff(par, seq) <= TOL
    assert max_diff(c_par[0].h, c_seq[0].h) <= TOL
    assert np.array_equal(np.asarray(fed), np.asarray(y))


def test_carry_passes_across_windows():
    """Two windows with the carry passed on = one window of both (teacher forced and free running)."""
    _, model, params, x, y, carries = built("transduction")
    whole, c_whole = model.apply({"params": params}, x, carries, outputs=y)
    a, ca = model.apply({"params": params}, x[:, :4], carries, outputs=y[:, :4])
    b, cb = model.apply({"params": params}, x[:, 4:], ca, outputs=y[:, 4:])
    assert max_diff(jnp.concatenate([a, b], 1), whole) <= TOL and max_diff(cb[0].h, c_whole[0].h) <= TOL
    free, _ = model.apply({"params": params}, x, carries)
    fa, cfa = model.apply({"params": params}, x[:, :4], carries)
    fb, _ = model.apply({"params": params}, x[:, 4:], cfa)
    assert max_diff(jnp.concatenate([fa, fb], 1), free) <= TOL


# ----------------------------------------------------------------------------- training modes
def loss_and_grads(cfg, model, params, x, y, carries, key=jax.random.key(5), step=0):
    loss_fn = make_loss_fn(model, cfg)
    (loss, (c, m)), g = jax.value_and_grad(loss_fn, has_aux=True)(params, carries, (x, y), key, jnp.int32(step))
    return float(loss), c, m, g


@pytest.mark.parametrize("kind", ["transduction", "tokens", "frames"])
@pytest.mark.parametrize("feedback", ["sample", "argmax", "soft"])
def test_scheduled_sampling_at_eps_one_equals_teacher_forcing(kind, feedback):
    """eps = 1: every coin feeds the gold output; with dropout 0.3 both passes draw the same masks."""
    mode = "soft_sampling" if feedback == "soft" else "scheduled_sampling"
    cfg_ss = config(mode, eps=1.0, feedback="sample" if feedback == "soft" else feedback, dropout=0.3)
    _, model, params, x, y, carries = built(kind, cfg_ss)
    tf = loss_and_grads(config(dropout=0.3), model, params, x, y, carries)
    ss = loss_and_grads(cfg_ss, model, params, x, y, carries)
    assert abs(tf[0] - ss[0]) <= TOL
    assert max(max_diff(a, b) for a, b in zip(jax.tree_util.tree_leaves(tf[3]), jax.tree_util.tree_leaves(ss[3]))) <= TOL
    assert max_diff(tf[1][0].h, ss[1][0].h) <= TOL
    assert float(ss[2]["gold_fed"]) == float(ss[2]["fed_count"]) == B * (T - 1)


@pytest.mark.parametrize("kind", ["transduction", "tokens"])
def test_two_pass_hard_feedback_equals_differentiating_the_sequential_pass(kind):
    """eps = 0.5, argmax feedback: choose without gradient, then the parallel pass on the choices =
    the sequential pass differentiated (no gradient flows through a hard choice)."""
    cfg = config("scheduled_sampling", eps=0.5, feedback="argmax")
    _, model, params, x, y, carries = built(kind, cfg)
    key = jax.random.key(11)
    loss, c, m, g = loss_and_grads(cfg, model, params, x, y, carries, key)
    gold, keys = _coins(key, 0.5, T, B, "token")  # the coins the loss draws from its key

    def one_pass(p):
        logits, _, _ = model.apply({"params": p}, x, y, carries, gold, keys, Feedback(kind="argmax"),
                                   method=OutputToHidden.feedback_pass)
        return model.head_fns.nll(logits, y).mean()

    ref, g_ref = jax.value_and_grad(one_pass)(params)
    assert abs(loss - float(ref)) <= TOL
    assert max(max_diff(a, b) for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_ref))) <= TOL
    assert float(m["gold_fed"]) == float(gold[:-1].sum())  # coins of the o_{t-1} fed inside the window
    assert 0 < float(m["gold_fed"]) < float(m["fed_count"])  # some outputs fed were the model's own


def test_coins_follow_eps():
    gold, keys = _coins(jax.random.key(0), 0.3, 200, 50, "token")
    assert gold.shape == (200, 50) and keys.shape == (200,) and abs(float(gold.mean()) - 0.3) < 0.02
    seq, _ = _coins(jax.random.key(0), 0.3, 20, 400, "sequence")  # one coin per row, held over time
    assert bool((seq == seq[:1]).all()) and abs(float(seq[0].mean()) - 0.3) < 0.07


def test_warmup_switches_to_the_parallel_pass():
    cfg = config("scheduled_sampling", eps=0.0, feedback="argmax", warmup=5)
    _, model, params, x, y, carries = built("transduction", cfg)
    tf = loss_and_grads(config(), model, params, x, y, carries)
    warm = loss_and_grads(cfg, model, params, x, y, carries, step=2)  # eps = 1 in the warm-up
    late = loss_and_grads(cfg, model, params, x, y, carries, step=9)  # eps = 0 after it
    assert abs(warm[0] - tf[0]) <= TOL and float(warm[2]["eps"]) == 1.0
    assert float(late[2]["eps"]) == 0.0 and float(late[2]["gold_fed"]) == 0.0 and abs(late[0] - tf[0]) > 1e-4


def test_train_step_runs_through_make_train_step():
    """train.make_train_step uses the model's own loss; the carry it returns is U[y_{T-1}]."""
    from rnnlab.optim import make_optimizer
    from rnnlab.train import create_train_state, make_train_step

    cfg = config()
    cfg.train.batch_size, cfg.train.bptt, cfg.train.optimizer, cfg.train.lr = B, T, "adam", 0.05
    model = make_model(cfg, IO["transduction"])
    tx, _ = make_optimizer(cfg, 10)
    state = create_train_state(cfg, model, tx, jax.random.key(0))
    (zero,) = initial_carries("output_to_hidden", 1, B, H)
    assert state.carries[0].h.shape == zero.h.shape == (B, H) and max_diff(state.carries[0].h, 0.0) == 0.0
    _, y, _ = data("transduction")
    x = jnp.asarray(np.asarray(y) % 3)
    step = jax.jit(make_train_step(model, tx, cfg))
    losses = []
    for _ in range(30):
        u_before = np.asarray(state.params["U"])  # the step's carry comes from the parameters it starts with
        state, m = step(state, (x, y), jax.random.key(1))
        losses.append(float(m["nll_sum"] / m["count"]))
    assert losses[-1] < 0.5 * losses[0]  # it fits 27 targets
    assert max_diff(state.carries[0].h, u_before[np.asarray(y)[:, -1]]) <= TOL


# ----------------------------------------------------------------------------- generation, errors
def test_generate_greedy_follows_the_argmax_chain():
    _, model, params, *_ = built("tokens")
    prompt = jnp.asarray([[1, 4], [2, 6]], jnp.int32)
    out, logits = generate(model, params, prompt, 6, jax.random.key(0), greedy=True)
    W, U, b, V, c = (np.asarray(params[k], np.float64) for k in "WUbVc")
    tok = np.asarray(prompt[:, -1])
    for t in range(6):
        o = np.tanh(W[tok] + U[tok] + b) @ V + c
        assert max_diff(logits[:, t], o) <= TOL
        tok = o.argmax(-1)
        assert np.array_equal(np.asarray(out[:, t]), tok)
    sampled, _ = generate(model, params, prompt, 50, jax.random.key(1), temperature=5.0)
    assert sampled.shape == (2, 50) and len(np.unique(np.asarray(sampled))) > 3


def test_errors_are_one_line():
    with pytest.raises(RnnlabError, match="num_layers=2 is not valid for model.cell=output_to_hidden"):
        cfg = config()
        cfg.model.num_layers = 2
        x, _, carries = data("transduction")
        make_model(cfg, IO["transduction"]).init(jax.random.key(0), x, carries)
    cfg = config()
    cfg.model.tie_weights = True
    with pytest.raises(RnnlabError, match="tie_weights=True does not apply"):
        make_model(cfg, 7)
    _, model, params, *_ = built("transduction")
    with pytest.raises(RnnlabError, match="generate needs a model whose output is its next input"):
        generate(model, params, jnp.zeros((1, 1), jnp.int32), 3, jax.random.key(0))
    cfg = config()
    cfg.model.cell = "output_to_hiden"
    with pytest.raises(RnnlabError, match="model.cell='output_to_hiden' is not valid; allowed: .*output_to_hidden"):
        validate(cfg)
    with pytest.raises(RnnlabError, match="train.mode='x' is not valid"):
        make_loss_fn(model, config(mode="x"))
