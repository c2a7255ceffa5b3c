"""Gate inspection: shapes and values against cell.inspect by hand, the gate equations on the traced
values, the top-k table, and the inspect_gates CLI on a tiny trained run."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import RnnlabError
from rnnlab.data import Vocab
from rnnlab.gates import inspect_text, top_table, trace, write_heatmaps, write_top_csv
from rnnlab.model import LanguageModel, initial_carries

ROOT = Path(__file__).resolve().parents[1]
V, H, E = 11, 12, 6
GATES = {"rnn": ["h"], "gru": ["r", "z", "n", "h"], "gru_cho": ["r", "z", "n", "h"],
         "lstm": ["i", "f", "g", "o", "c", "h"]}


def make_model(cell, layers=2):
    model = LanguageModel(vocab_size=V, cell=cell, hidden_size=H, num_layers=layers, embed_size=E, init_scale=0.5)
    params = model.init(jax.random.key(1), jnp.zeros((1, 2), jnp.int32), initial_carries(cell, layers, 1, H))["params"]
    return model, params


TOKENS = np.array([[1, 4, 2, 8, 5, 7, 3], [0, 10, 9, 6, 6, 2, 1]], np.int32)


@pytest.mark.parametrize("cell", ["rnn", "gru", "gru_cho", "lstm"])
def test_trace_equals_cell_inspect_by_hand(cell):
    model, params = make_model(cell)
    out = jax.device_get(trace(model, params, jnp.asarray(TOKENS), top_k=3))
    B, T = TOKENS.shape
    assert len(out["gates"]) == 2
    for layer in out["gates"]:
        assert sorted(layer) == sorted(GATES[cell])
        assert all(v.shape == (B, T, H) for v in layer.values())
    # by hand: a Python loop over time and layers calling cell.inspect on the projected input
    c = model.cell_fns
    x = np.asarray(params["embedding"]["embedding"])[TOKENS]  # [B, T, E]
    carries = list(initial_carries(cell, 2, B, H))
    for t in range(T):
        h = jnp.asarray(x[:, t])
        for l in range(2):
            p = params[f"layer_{l}"]
            carries[l], h, g = c.inspect(p, carries[l], c.project(p, h))
            for name, v in g.items():
                np.testing.assert_allclose(out["gates"][l][name][:, t], np.asarray(v), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(out["gates"][l]["h"][:, t], np.asarray(h), rtol=1e-5, atol=1e-6)
    # the logits are the model's own
    logits, _ = model.apply({"params": params}, jnp.asarray(TOKENS), initial_carries(cell, 2, B, H))
    np.testing.assert_allclose(out["logits"], np.asarray(logits), rtol=1e-5, atol=1e-5)
    probs = np.asarray(jax.nn.softmax(logits, axis=-1))
    top = np.sort(probs, axis=-1)[..., ::-1][..., :3]
    np.testing.assert_allclose(out["top_probs"], top, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(probs, out["top_ids"], -1), out["top_probs"], rtol=1e-5, atol=1e-6)


def test_gate_equations_hold_on_the_trace():
    model, params = make_model("gru", layers=1)
    g = jax.device_get(trace(model, params, jnp.asarray(TOKENS)))["gates"][0]
    h_prev = np.concatenate([np.zeros((2, 1, H), np.float32), g["h"][:, :-1]], axis=1)
    # both GRUs here: h' = (1 - z) * n + z * h (z near 1 keeps the old state)
    np.testing.assert_allclose(g["h"], (1 - g["z"]) * g["n"] + g["z"] * h_prev, rtol=1e-5, atol=1e-6)
    assert 0 < g["z"].min() and g["z"].max() < 1 and np.abs(g["n"]).max() < 1
    model, params = make_model("lstm", layers=1)
    g = jax.device_get(trace(model, params, jnp.asarray(TOKENS)))["gates"][0]
    c_prev = np.concatenate([np.zeros((2, 1, H), np.float32), g["c"][:, :-1]], axis=1)
    np.testing.assert_allclose(g["c"], g["f"] * c_prev + g["i"] * g["g"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g["h"], g["o"] * np.tanh(g["c"]), rtol=1e-5, atol=1e-6)


def test_inspect_text_table_and_files(tmp_path):
    model, params = make_model("gru")
    vocab = Vocab(list("abcdefghij "), level="char")
    tr = inspect_text(model, params, vocab, "bad cafe", top_k=5)
    assert tr.tokens == list("bad cafe") and tr.gates[1]["z"].shape == (8, H) and tr.top_ids.shape == (8, 5)
    rows = top_table(tr, vocab)
    probs = np.asarray(jax.nn.softmax(tr.logits, axis=-1))
    assert rows[3]["input"] == "␣" and rows[3]["next"] == "c"
    assert rows[3]["p_next"] == pytest.approx(float(probs[3, vocab.stoi["c"]]), rel=1e-6)
    assert rows[3]["rank_next"] == int((probs[3] > probs[3, vocab.stoi["c"]]).sum()) + 1
    assert rows[0]["top1"] == vocab.itos[int(probs[0].argmax())].replace(" ", "␣")
    assert rows[-1]["next"] == "" and sum(rows[0][f"p{k}"] for k in range(1, 6)) <= 1 + 1e-6
    path = write_top_csv(rows, tmp_path / "top5.csv")
    back = list(csv.DictReader(open(path, encoding="utf-8")))
    assert len(back) == 8 and back[3]["next"] == "c" and float(back[3]["p_next"]) == pytest.approx(rows[3]["p_next"], abs=1e-4)
    pngs = write_heatmaps(tr, tmp_path / "png", layers=[1], units=5)
    assert sorted(p.name for p in pngs) == ["layer1_h.png", "layer1_n.png", "layer1_r.png", "layer1_z.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    with pytest.raises(RnnlabError, match="layer 2 is not valid; the model has 2 layer"):
        write_heatmaps(tr, tmp_path / "png", layers=[2])
    with pytest.raises(RnnlabError, match="'z'"):
        inspect_text(model, params, vocab, "abz")


@pytest.fixture(scope="module")
def tiny_lstm_run(tmp_path_factory, data_dir):
    from rnnlab.train import train_and_evaluate
    from test_sampling import tiny_config

    cfg = tiny_config("lstm")
    cfg.train.max_steps = 10
    workdir = tmp_path_factory.mktemp("runs") / "tm_lstm"
    train_and_evaluate(cfg, workdir)
    return workdir


def run_cli(*args):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.inspect_gates", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_inspect_gates_cli(tiny_lstm_run, tmp_path):
    from rnnlab.runs import load_run

    out = tmp_path / "gates"
    r = run_cli(f"--workdir={tiny_lstm_run}", "--text=the time traveller", f"--out={out}", "--layer=0", "--units=8")
    assert r.returncode == 0, r.stderr
    names = sorted(Path(p).name for p in r.stdout.split())
    assert names == sorted([f"layer0_{g}.png" for g in GATES["lstm"]] + ["top5.csv"])
    rows = list(csv.DictReader(open(out / "top5.csv", encoding="utf-8")))
    assert len(rows) == len("the time traveller") and rows[0]["input"] == "t" and rows[0]["next"] == "h"
    _, model, params, vocab = load_run(tiny_lstm_run)
    tr = inspect_text(model, params, vocab, "the time traveller")
    for t in (0, 5, 17):
        assert float(rows[t]["p1"]) == pytest.approx(float(tr.top_probs[t, 0]), abs=1e-4)
        assert rows[t]["top1"] == vocab.itos[int(tr.top_ids[t, 0])].replace(" ", "␣")
    r = run_cli(f"--workdir={tiny_lstm_run}", "--text=The Time", f"--out={out}", "--layer=1")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: text has 2 chars not in the vocab ('T'); use only the vocab's 28 tokens"]
    r = run_cli(f"--workdir={tiny_lstm_run}", "--text=the", f"--out={out}", "--layer=1")
    assert r.returncode == 2 and r.stderr.strip() == "error: layer 1 is not valid; the model has 1 layer(s): 0..0"
    r = run_cli(f"--workdir={tmp_path / 'none'}", "--text=the", f"--out={out}")
    assert r.returncode == 2 and r.stderr.strip().startswith("error: run directory") and len(r.stderr.strip().splitlines()) == 1
