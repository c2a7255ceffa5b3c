"""Training: Zaremba's lr schedule, the pure train step, one optimizer step by hand, TBPTT carries
(passed across windows, reset at each epoch), reproducibility, the run directory's files, and the
quickstart reaching its optimal perplexity for every cell."""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab.config import base_config, to_dict
from rnnlab.data import load_corpus, reber_entropy_rate, reber_logprob, train_windows
from rnnlab.model import build_model, count_params, model_carries
from rnnlab.train import (create_train_state, lr_schedule, make_optimizer, make_train_step, params_sha256,
                          split_keys, train_and_evaluate)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # configs/ is a package at the repository root
    sys.path.insert(0, str(ROOT))


def tiny_cfg(cell="gru", **train):
    """A seconds-long run on the Reber source (char level, 7 symbols, known optimum)."""
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 3000, 400, 400
    c.model.cell = cell
    c.model.hidden_size = 8
    c.model.embed_size = 4
    c.model.num_layers = 1
    c.train.batch_size = 4
    c.train.bptt = 10
    c.train.epochs = 1
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.clip_norm = 1.0
    c.train.log_every = 5
    c.train.progress = False
    c.eval.batch_size = 4
    c.wandb.mode = "disabled"
    for k, v in train.items():
        c.train[k] = v
    return c


def leaves64(tree):
    return [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(tree)]


def max_diff_tree(a, b) -> float:
    la, lb = leaves64(a), leaves64(b)
    assert len(la) == len(lb)
    return max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(la, lb))


# ----------------------------------------------------------------------------- lr schedule
@pytest.mark.parametrize("lr,hold,decay,epochs", [
    (1.0, 4, 0.5, 9),  # ptb_small, in TF's summed-loss units
    (35.0, 6, 1 / 1.2, 10),  # ptb_medium, lr * bptt
    (35.0, 14, 1 / 1.15, 18),  # ptb_large
    (0.01, 2, 0.5, 5),  # quickstart
    (0.5, 1, 0.7, 5),  # decay from the second epoch
    (2.0, 0, 0.5, 4),  # decay from the first epoch
    (0.3, 3, 1.0, 5),  # constant
])
def test_lr_schedule_is_zarembas(lr, hold, decay, epochs):
    cfg = base_config()
    cfg.train.lr, cfg.train.lr_hold_epochs, cfg.train.lr_decay = lr, hold, decay
    spe = 7
    sched = lr_schedule(cfg, spe)
    for step in range(epochs * spe):
        epoch = step // spe
        want = lr * decay ** max(epoch + 1 - hold, 0)  # TF ptb_word_lm: lr_decay ** max(i + 1 - max_epoch, 0)
        assert float(sched(step)) == pytest.approx(want, rel=1e-6), (step, epoch)


# ----------------------------------------------------------------------------- the step
def step_setup(cfg):
    corpus = load_corpus(cfg.data)
    model = build_model(cfg, corpus.vocab.size)
    x, y = train_windows(corpus.train, cfg.train.batch_size, cfg.train.bptt)
    tx, _ = make_optimizer(cfg, x.shape[0])
    state = create_train_state(cfg, model, tx, split_keys(cfg.train.seed)["init"])
    return model, tx, state, x, y


def test_train_step_is_pure():
    cfg = tiny_cfg("lstm")
    cfg.model.dropout = 0.3  # the key matters
    model, tx, state, x, y = step_setup(cfg)
    step = jax.jit(make_train_step(model, tx, cfg))
    before = leaves64(state)
    key = jax.random.key(7)
    s1, m1 = step(state, (x[0], y[0]), key)
    s2, m2 = step(state, (x[0], y[0]), key)
    assert max_diff_tree(s1, s2) == 0.0 and max_diff_tree(m1, m2) == 0.0  # same inputs -> same outputs
    assert all(np.array_equal(a, b) for a, b in zip(before, leaves64(state)))  # input state untouched
    assert int(s1.step) == int(state.step) + 1
    assert max_diff_tree(s1.params, state.params) > 0.0  # it did update
    s3, _ = step(state, (x[0], y[0]), jax.random.key(8))
    assert max_diff_tree(s3.params, s1.params) > 0.0  # another key, another dropout mask
    assert float(m1["count"]) == cfg.train.batch_size * cfg.train.bptt


def manual_grads(model, params, carries, x, y):
    """Mean NLL (log-softmax written out) and its gradient, without forcing.py."""
    def loss(p):
        logits, _ = model.apply({"params": p}, x, carries)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, y[..., None], axis=-1).mean()

    return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("optimizer,clip", [("sgd", 0.02), ("sgd", 0.0), ("sgd", 1e6), ("adam", 0.02)])
def test_one_step_equals_hand_update(optimizer, clip):
    cfg = tiny_cfg("lstm", optimizer=optimizer, lr=0.7 if optimizer == "sgd" else 0.01, clip_norm=clip,
                   lr_hold_epochs=3)
    model, tx, state, x, y = step_setup(cfg)
    batch = (jnp.asarray(x[0]), jnp.asarray(y[0]))
    new, metrics = jax.jit(make_train_step(model, tx, cfg))(state, batch, jax.random.key(0))

    loss, g = manual_grads(model, state.params, state.carries, *batch)
    gl = leaves64(g)
    norm = math.sqrt(sum(float((a * a).sum()) for a in gl))
    scale = min(1.0, clip / norm) if clip > 0 else 1.0
    if clip == 0.02:
        assert norm > 4 * clip  # the clipping is active in this case
    lr = cfg.train.lr
    want = []
    for p, gg in zip(leaves64(state.params), gl):
        gg = gg * scale
        if optimizer == "sgd":
            want.append(p - lr * gg)
        else:  # Adam's first step: m_hat = g, v_hat = g^2
            want.append(p - lr * gg / (np.abs(gg) + 1e-8))
    got = leaves64(new.params)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(got, want))
    assert worst <= 2e-6
    change = max(float(np.max(np.abs(a - b))) for a, b in zip(got, leaves64(state.params)))
    assert change > 1e-4
    assert float(metrics["nll_sum"]) / float(metrics["count"]) == pytest.approx(float(loss), rel=1e-5)
    assert float(metrics["grad_norm_sum"]) == pytest.approx(norm, rel=1e-5)


def test_step_returns_the_windows_final_carries():
    cfg = tiny_cfg("lstm", optimizer="sgd", lr=0.5)
    model, tx, state, x, y = step_setup(cfg)
    new, _ = jax.jit(make_train_step(model, tx, cfg))(state, (x[0], y[0]), jax.random.key(0))
    _, want = model.apply({"params": state.params}, jnp.asarray(x[0]), state.carries)  # old params, this window
    assert max_diff_tree(new.carries, want) <= 1e-6
    assert max_diff_tree(new.carries, state.carries) > 1e-3


def read_metrics(workdir):
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln) for ln in lines]


def test_carry_passes_across_windows_and_resets_each_epoch(tmp_path):
    """With lr 0 the parameters never change, so each logged step loss depends on the carries only:
    window w of epoch 2 must score as window w of epoch 1 (reset at epoch start), and windows w > 0
    must score as with the carry of window w - 1 (passed across windows), not from zeros."""
    cfg = tiny_cfg("gru", optimizer="sgd", lr=0.0, log_every=1, epochs=2)
    cfg.data.num_train = 250  # 4 streams of 62 tokens: 6 windows of 10 per epoch
    cfg.model.init_scale = 0.5  # a state that matters
    summary = train_and_evaluate(cfg, tmp_path / "run")
    W = summary["steps_per_epoch"]
    assert W == 6 and summary["steps"] == 2 * W
    logged = {r["step"]: r["train/loss"] for r in read_metrics(tmp_path / "run") if "train/loss" in r}
    assert sorted(logged) == list(range(1, 2 * W + 1))

    model, tx, state, x, y = step_setup(cfg)  # the same init (same seed, same key purpose)
    assert summary["params_sha256"] == params_sha256(state.params)  # lr 0: the parameters never moved

    def window_loss(carries, w):
        logits, carries = model.apply({"params": state.params}, jnp.asarray(x[w]), carries)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return float(-jnp.take_along_axis(logp, jnp.asarray(y[w])[..., None], axis=-1).mean()), carries

    zero = model_carries(cfg, cfg.train.batch_size)
    carried, c = [], zero
    for w in range(W):
        loss, c = window_loss(c, w)
        carried.append(loss)
    from_zero = [window_loss(zero, w)[0] for w in range(W)]
    no_reset = window_loss(c, 0)[0]  # epoch 2, window 0, had the carry not been reset

    for step in range(2 * W):
        assert logged[step + 1] == pytest.approx(carried[step % W], rel=1e-5), step
    assert any(abs(carried[w] - from_zero[w]) > 1e-3 for w in range(1, W))  # the carry makes a difference
    assert abs(no_reset - carried[0]) > 1e-3  # so the reset is visible too


# ----------------------------------------------------------------------------- whole runs
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The same tiny config trained twice with seed 0 and once with seed 1."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        cfg = tiny_cfg("lstm", seed=seed, max_steps=30, log_every=7)
        cfg.model.dropout = 0.1  # dropout keys are part of what must repeat
        out[name] = (cfg, root / name, train_and_evaluate(cfg, root / name))
    return out


def test_same_seed_same_run_other_seed_other_run(tiny_runs):
    (_, _, a), (_, _, b), (_, _, c) = tiny_runs["a"], tiny_runs["b"], tiny_runs["c"]
    assert re.fullmatch(r"[0-9a-f]{64}", a["params_sha256"])
    assert a["params_sha256"] == b["params_sha256"]
    assert a["test_ppl"] == b["test_ppl"] and a["val_ppl"] == b["val_ppl"]
    assert c["params_sha256"] != a["params_sha256"]
    assert c["test_ppl"] != a["test_ppl"]


def test_run_directory_files(tiny_runs):
    cfg, workdir, s = tiny_runs["a"]
    on_disk = json.loads((workdir / "summary.json").read_text())
    assert on_disk["params_sha256"] == s["params_sha256"] and on_disk["test_ppl"] == s["test_ppl"]
    keys = ["cell", "train_mode", "seed", "num_params", "val_ppl", "test_ppl", "best_val_ppl", "steps",
            "tokens_per_sec", "wall_s", "device", "jax_version", "git_commit", "params_sha256", "test_bpc",
            "optimal_ppl"]
    missing = [k for k in keys if k not in on_disk]
    assert not missing, missing
    assert on_disk["cell"] == "lstm" and on_disk["train_mode"] == "teacher_forcing" and on_disk["seed"] == 0
    assert on_disk["steps"] == 30
    corpus = load_corpus(cfg.data)
    model = build_model(cfg, corpus.vocab.size)
    p = model.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32), model_carries(cfg, 1))["params"]
    assert on_disk["num_params"] == count_params(p) == 7 * 4 + 4 * 8 * (4 + 8 + 2) + 8 * 7 + 7
    assert on_disk["test_bpc"] == pytest.approx(math.log(on_disk["test_ppl"]) / math.log(2), rel=1e-9)
    assert on_disk["optimal_ppl"] == pytest.approx(reber_entropy_rate()["optimal_ppl"], rel=1e-12)
    assert 1.0 < on_disk["optimal_ppl"] < on_disk["test_ppl"] < 7.5
    assert on_disk["best_val_ppl"] <= on_disk["val_ppl"]
    assert on_disk["tokens_per_sec"] > 0 and on_disk["wall_s"] > 0
    assert on_disk["jax_version"] == jax.__version__ and jax.devices()[0].platform in on_disk["device"]
    assert on_disk["git_commit"] == "unknown" or re.match(r"[0-9a-f]{40}", on_disk["git_commit"])

    assert json.loads((workdir / "config.json").read_text()) == to_dict(cfg)

    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(ln) for ln in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) and isinstance(r["step"], int) for r in recs)
    train_steps = [r["step"] for r in recs if "train/loss" in r]
    assert train_steps == [7, 14, 21, 28, 30]  # every log_every steps, and the last
    assert all(math.isfinite(r["train/loss"]) and r["train/ppl"] == pytest.approx(math.exp(r["train/loss"]))
               for r in recs if "train/loss" in r)
    val = [r for r in recs if "val/ppl" in r]
    assert [r["step"] for r in val] == [30]  # max_steps ends inside the first epoch
    assert val[-1]["val/ppl"] == pytest.approx(on_disk["val_ppl"], rel=1e-12)
    test = [r for r in recs if "test/ppl" in r]
    assert len(test) == 1 and test[0]["test/ppl"] == pytest.approx(on_disk["test_ppl"], rel=1e-12)
    assert [r["step"] for r in recs] == sorted(r["step"] for r in recs)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_quickstart_reaches_the_optimum(cell, tmp_path):
    """configs/quickstart.py trains each cell to within 10% of the source's optimal perplexity."""
    from configs.quickstart import get_config

    cfg = get_config()
    cfg.model.cell = cell
    cfg.train.progress = False
    cfg.wandb.mode = "disabled"
    s = train_and_evaluate(cfg, tmp_path / cell)
    assert s["optimal_ppl"] == pytest.approx(reber_entropy_rate()["optimal_ppl"], rel=1e-12)
    assert s["test_ppl"] <= 1.10 * s["optimal_ppl"], (cell, s["test_ppl"], s["optimal_ppl"])
    # the true grammar's perplexity on this very test split bounds the model from below
    source_ppl = math.exp(-reber_logprob(load_corpus(cfg.data).test).mean())
    assert s["test_ppl"] >= 0.995 * source_ppl, (s["test_ppl"], source_ppl)
    assert s["test_tokens"] == cfg.data.num_test - 1
