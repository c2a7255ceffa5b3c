"""Sampling: determinism, greedy = argmax of the teacher-forced logits, top-k / top-p / temperature
numbers, batched = per row, prompt encoding; load_run and the sample CLI on a tiny trained run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.config import base_config
from rnnlab.data import Vocab
from rnnlab.model import LanguageModel, initial_carries
from rnnlab.runs import load_run
from rnnlab.sampling import encode_prompt, filter_logits, generate, next_token, row_keys, sample_text

ROOT = Path(__file__).resolve().parents[1]
V = 13


def make_model(cell="gru", layers=2, hidden=16, seed=0):
    # init_scale 0.5: random weights that give peaked, position-dependent logits (no near-ties)
    model = LanguageModel(vocab_size=V, cell=cell, hidden_size=hidden, num_layers=layers, embed_size=8,
                          init_scale=0.5)
    carries = initial_carries(cell, layers, 1, hidden)
    params = model.init(jax.random.key(seed), jnp.zeros((1, 3), jnp.int32), carries)["params"]
    return model, params


PROMPT = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.int32)


@pytest.mark.parametrize("cell", ["rnn", "gru", "gru_cho", "lstm"])
def test_greedy_is_argmax_of_teacher_forced_logits(cell):
    model, params = make_model(cell)
    L = 12
    toks, lgs = generate(model, params, PROMPT, L, jax.random.key(0), greedy=True, return_logits=True)
    toks, lgs = np.asarray(toks), np.asarray(lgs)
    assert toks.shape == (3, L) and lgs.shape == (3, L, V)
    full = np.concatenate([PROMPT, toks], axis=1)
    tf_logits, _ = model.apply({"params": params}, jnp.asarray(full), initial_carries(cell, 2, 3, 16))
    tf = np.asarray(tf_logits)[:, PROMPT.shape[1] - 1: -1]  # the logits that predicted each generated token
    np.testing.assert_allclose(lgs, tf, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(toks, tf.argmax(-1))
    # temperature 0 is greedy too
    np.testing.assert_array_equal(np.asarray(generate(model, params, PROMPT, L, jax.random.key(5), temperature=0.0)), toks)


def test_same_seed_same_tokens_and_top_k_1_is_greedy():
    model, params = make_model()
    a = np.asarray(generate(model, params, PROMPT, 30, jax.random.key(7), temperature=1.0))
    b = np.asarray(generate(model, params, PROMPT, 30, jax.random.key(7), temperature=1.0))
    c = np.asarray(generate(model, params, PROMPT, 30, jax.random.key(8), temperature=1.0))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3  # another seed gives another text
    greedy = np.asarray(generate(model, params, PROMPT, 30, jax.random.key(0), greedy=True))
    top1 = np.asarray(generate(model, params, PROMPT, 30, jax.random.key(3), temperature=1.5, top_k=1))
    np.testing.assert_array_equal(top1, greedy)
    assert (a != greedy).mean() > 0.3  # sampling at T=1 is not greedy


def test_batched_equals_per_row():
    model, params = make_model("lstm")
    key = jax.random.key(11)
    batched = np.asarray(generate(model, params, PROMPT, 25, key, temperature=0.9, top_p=0.95))
    keys = row_keys(key, 3)
    for b in range(3):
        row = np.asarray(generate(model, params, PROMPT[b:b + 1], 25, keys[b:b + 1], temperature=0.9, top_p=0.95))
        np.testing.assert_array_equal(row[0], batched[b])
    # rows with the same prompt still differ (each row has its own key)
    same = np.asarray(generate(model, params, np.tile(PROMPT[:1], (2, 1)), 25, key, temperature=1.0))
    assert (same[0] != same[1]).any()


def test_filter_logits_numbers():
    p = np.array([0.5, 0.3, 0.15, 0.05], np.float32)
    logits = jnp.log(jnp.asarray(p))
    probs = lambda lg: np.asarray(jax.nn.softmax(lg))
    # nucleus 0.7: 0.5 < 0.7 so the second token is needed; 0.5 + 0.3 = 0.8 >= 0.7 so it stops there
    np.testing.assert_allclose(probs(filter_logits(logits, top_p=0.7)), [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_allclose(probs(filter_logits(logits, top_p=0.85)), np.r_[p[:3] / 0.95, 0], atol=1e-6)
    np.testing.assert_allclose(probs(filter_logits(logits, top_p=0.4)), [1, 0, 0, 0], atol=1e-6)  # top token always kept
    np.testing.assert_allclose(probs(filter_logits(logits, top_p=1.0)), p, atol=1e-6)
    np.testing.assert_allclose(probs(filter_logits(logits, top_k=3)), np.r_[p[:3] / 0.95, 0], atol=1e-6)
    np.testing.assert_allclose(probs(filter_logits(logits, top_k=1)), [1, 0, 0, 0], atol=1e-6)
    # temperature 2 divides the logits by 2: p^(1/2) renormalised
    q = np.sqrt(p) / np.sqrt(p).sum()
    np.testing.assert_allclose(probs(filter_logits(logits, temperature=2.0)), q, atol=1e-6)
    # order: temperature first, then top-k, then the nucleus of what is left
    np.testing.assert_allclose(probs(filter_logits(logits, temperature=2.0, top_k=2)),
                               np.r_[q[:2] / q[:2].sum(), 0, 0], atol=1e-6)
    # batched rows are filtered independently
    two = jnp.stack([logits, logits[::-1]])
    out = probs(filter_logits(two, top_p=0.7))
    np.testing.assert_allclose(out[1], [0, 0, 0.375, 0.625], atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_sampling_frequencies_match_softmax(temperature):
    logits = jnp.array([2.0, 1.0, 0.5, 0.0, -1.0])
    N = 40_000
    keys = jax.random.split(jax.random.key(123), N)
    toks = next_token(jnp.broadcast_to(logits, (N, 5)), keys, temperature=temperature)
    counts = np.bincount(np.asarray(toks), minlength=5)
    expected = N * np.asarray(jax.nn.softmax(logits / temperature), np.float64)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 18.5, (counts, expected)  # chi-square, 4 degrees of freedom: P(chi2 > 18.5) ~ 1e-3
    # and the draws are not those of another temperature
    other = N * np.asarray(jax.nn.softmax(logits / (temperature * 1.5)), np.float64)
    assert ((counts - other) ** 2 / other).sum() > 100


def test_bad_arguments_are_one_line_errors():
    model, params = make_model()
    key = jax.random.key(0)
    for kwargs, word in [({"temperature": -1.0}, "temperature"), ({"top_p": 0.0}, "top_p"),
                         ({"top_k": -2}, "top_k"), ({"temperature": float("nan")}, "temperature")]:
        with pytest.raises(RnnlabError, match=word):
            generate(model, params, PROMPT, 5, key, **kwargs)
    with pytest.raises(RnnlabError, match=r"\[B, P\]"):
        generate(model, params, PROMPT[0], 5, key)
    with pytest.raises(RnnlabError, match="ids must be in"):
        generate(model, params, PROMPT + V, 5, key)
    with pytest.raises(RnnlabError, match="3 keys for a prompt batch of 2"):
        generate(model, params, PROMPT[:2], 5, jax.random.split(key, 3))


def test_encode_prompt_unknown_tokens():
    chars = Vocab(list("ab "), level="char")
    ids, note = encode_prompt(chars, "ab a")
    np.testing.assert_array_equal(ids, [0, 1, 2, 0])
    assert note is None
    with pytest.raises(RnnlabError, match=r"chars not in the vocab: 'X', '!'"):
        encode_prompt(chars, "aXb!")
    ids, note = encode_prompt(chars, "aXb!", drop_unknown=True)
    np.testing.assert_array_equal(ids, [0, 1])
    assert "'X', '!'" in note
    # an empty prompt starts from the space
    np.testing.assert_array_equal(encode_prompt(chars, "")[0], [2])
    words = Vocab(["<unk>", "<eos>", "the", "time"], level="word")
    ids, note = encode_prompt(words, "the machine time")
    np.testing.assert_array_equal(ids, [2, 0, 3])
    assert "'machine'" in note and "<unk>" in note
    no_unk = Vocab(["the", "time"], level="word")
    with pytest.raises(RnnlabError, match="'machine' and the vocab has no <unk>"):
        encode_prompt(no_unk, "the machine")


def test_sample_text_sample_i_does_not_depend_on_n():
    model, params = make_model()
    vocab = Vocab([chr(ord("a") + i) for i in range(V - 1)] + [" "], level="char")
    three = sample_text(model, params, vocab, "abc", length=20, seed=4, num_samples=3, temperature=1.0)
    one = sample_text(model, params, vocab, "abc", length=20, seed=4, num_samples=1, temperature=1.0)
    assert len(three) == 3 and all(len(t) == 20 for t in three)
    assert one[0] == three[0] and three[1] != three[0]
    with pytest.warns(UserWarning, match="dropped"):
        sample_text(model, params, vocab, "aZb", length=3, drop_unknown=True)


# ------------------------------------------------------------------- a tiny trained run, the CLI
def tiny_config(cell="gru"):
    c = base_config()
    c.data.name = "timemachine"
    c.model.cell = cell
    c.model.hidden_size = 24
    c.model.embed_size = 8
    c.model.num_layers = 1
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.batch_size = 8
    c.train.bptt = 16
    c.train.max_steps = 30
    c.train.progress = False
    c.eval.batch_size = 8
    c.wandb.mode = "disabled"
    return c


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    from rnnlab.train import train_and_evaluate

    workdir = tmp_path_factory.mktemp("runs") / "tm_tiny"
    summary = train_and_evaluate(tiny_config(), workdir)
    assert summary["val_ppl"] < 25
    return workdir


def run_cli(module, *args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_load_run_restores_the_trained_params(tiny_run):
    from rnnlab.checkpoint import Checkpointer
    from rnnlab.train import create_train_state, make_optimizer

    cfg, model, params, vocab = load_run(tiny_run)
    assert cfg.model.hidden_size == 24 and vocab.size == 28 and vocab.level == "char"
    # the same numbers as a full restore with a TrainState target
    tx, _ = make_optimizer(cfg, 1)
    target = create_train_state(cfg, model, tx, jax.random.key(0))
    ck = Checkpointer(tiny_run)
    state, meta = ck.restore(target, which="best")
    ck.close()
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    latest = load_run(tiny_run, "latest").params
    assert jax.tree_util.tree_structure(latest) == jax.tree_util.tree_structure(params)


def test_load_run_errors(tiny_run, tmp_path):
    with pytest.raises(RnnlabError, match="run directory .* not found"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RnnlabError, match="no checkpoint in"):
        load_run(tmp_path / "empty")
    with pytest.raises(RnnlabError, match="checkpoint='final' is not valid"):
        load_run(tiny_run, "final")
    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    vocab = json.loads((bad / "vocab.json").read_text())
    vocab["itos"].append("#")
    (bad / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(RnnlabError, match=r"does not match .*embedding.* is \(28, 8\) in the checkpoint, \(29, 8\)"):
        load_run(bad)
    cfg = json.loads((tiny_run / "config.json").read_text())
    cfg["model"]["hidden_size"] = 32
    shutil.copy(tiny_run / "vocab.json", bad / "vocab.json")
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RnnlabError, match="does not match the run's config.json/vocab.json"):
        load_run(bad)


def test_sample_cli_end_to_end(tiny_run):
    args = ["--workdir", str(tiny_run), "--prompt=the time", "--length=40", "--temperature=0.8", "--seed=3"]
    a = run_cli("experiments.sample", *args, "--num_samples=2")
    assert a.returncode == 0, a.stderr
    lines = a.stdout.splitlines()
    assert lines[0] == "--- sample 0" and lines[2] == "--- sample 1"
    assert lines[1].startswith("the time") and len(lines[1]) == len("the time") + 40
    assert set(lines[1]) <= set("abcdefghijklmnopqrstuvwxyz ")
    # same seed, same text; the CLI prints what the library returns
    cfg, model, params, vocab = load_run(tiny_run)
    expected = sample_text(model, params, vocab, "the time", length=40, seed=3, num_samples=2, temperature=0.8)
    assert [lines[1], lines[3]] == ["the time" + t for t in expected]
    g = run_cli("experiments.sample", "--workdir", str(tiny_run), "--prompt=the", "--length=30", "--greedy")
    assert g.returncode == 0, g.stderr
    assert g.stdout.rstrip("\n") == "the" + sample_text(model, params, vocab, "the", length=30, greedy=True)[0]


def test_sample_cli_one_line_errors(tiny_run, tmp_path):
    r = run_cli("experiments.sample", "--workdir", str(tiny_run), "--prompt=The Time!")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "error: prompt has chars not in the vocab: 'T', '!'; remove them or pass --drop_unknown (the vocab has 28 tokens)"]
    r = run_cli("experiments.sample", "--workdir", str(tiny_run), "--prompt=The Time!", "--drop_unknown", "--length=5")
    assert r.returncode == 0 and r.stdout.startswith("The Time!")
    assert r.stderr.strip().splitlines()[-1] == "warning: dropped chars not in the vocab from the prompt: 'T', '!'"
    (tmp_path / "run").mkdir()
    r = run_cli("experiments.sample", "--workdir", str(tmp_path / "run"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: no checkpoint in")
    r = run_cli("experiments.sample", "--workdir", str(tiny_run), "--top_p=1.5")
    assert r.returncode == 2 and r.stderr.strip() == "error: top_p=1.5 is not valid; it must be in (0, 1] (1 = no nucleus filter)"
