"""Music through the seam (issue 12): the frame kind's NLL per time step, padding and windows that
change nothing, the Chung recipe's parts (lstm_peephole, RMSProp, weight noise, early stopping), and
tiny end-to-end runs of every cell and mode on a small .mat file."""
from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from rnnlab.config import base_config
from rnnlab.train import add_weight_noise, create_train_state, make_train_step, prepare, train_and_evaluate

from _offline import no_download  # noqa: F401  (autouse: nothing downloads)

CHUNG = {"rnn": 100, "gru_cho": 46, "lstm_peephole": 36}


def _rolls(rng, lengths, density=0.08):
    cell = np.empty((1, len(lengths)), dtype=object)
    for i, n in enumerate(lengths):
        cell[0, i] = (rng.random((n, 88)) < density).astype(np.uint8)
    return cell


@pytest.fixture(scope="module")
def tiny_music(tmp_path_factory) -> Path:
    """A data folder with music/JSB_Chorales.mat of a few short random pieces of different lengths."""
    root = tmp_path_factory.mktemp("music_data")
    rng = np.random.default_rng(0)
    (root / "music").mkdir()
    scipy.io.savemat(root / "music" / "JSB_Chorales.mat",
                     {"traindata": _rolls(rng, [23, 9, 31, 14, 40, 17, 26, 12]),
                      "validdata": _rolls(rng, [19, 33, 8, 25, 11]), "testdata": _rolls(rng, [21, 7, 35, 16])})
    return root


def music_config(data_dir, cell="lstm_peephole", **over):
    c = base_config()
    c.data.name, c.data.dir = "jsb_chorales", str(data_dir)
    c.model.cell, c.model.hidden_size, c.model.num_layers = cell, 8, 1
    c.model.frame_projection, c.model.init = False, "pytorch"
    c.train.optimizer, c.train.lr, c.train.lr_decay, c.train.clip_norm = "rmsprop", 3e-3, 1.0, 1.0
    c.train.batch_size, c.train.bptt, c.train.epochs = 3, 10, 3
    c.train.log_every, c.train.progress = 2, False
    c.train.schedule.k = 5.0
    c.eval.batch_size, c.eval.bptt = 2, 10
    c.wandb.mode = "disabled"
    for k, v in over.items():
        node = c
        *path, name = k.split(".")
        for p in path:
            node = node[p]
        node[name] = v
    return c


def test_constant_half_gives_88_ln2_per_frame(tiny_music):
    """Zero readout: every key has probability 1/2, so the NLL of every frame is 88 ln 2 exactly."""
    setup = prepare(music_config(tiny_music))
    state = create_train_state(music_config(tiny_music), setup.model, setup.tx, jax.random.key(0))
    params = jax.tree_util.tree_map(lambda x: x, state.params)
    params["readout"] = jax.tree_util.tree_map(jnp.zeros_like, params["readout"])
    for split, pieces in (("valid", setup.corpus.valid), ("test", setup.corpus.test)):
        m = setup.evaluate(music_config(tiny_music), params, split)
        assert m["count"] == sum(p.shape[0] - 1 for p in pieces)  # every predicted frame once, padding never
        assert m["nll"] == pytest.approx(88 * math.log(2.0), rel=1e-6)
        assert m["nll_per_key"] == pytest.approx(math.log(2.0), rel=1e-6)


@pytest.mark.parametrize("cell", sorted(CHUNG))
def test_padding_and_windows_change_nothing(tiny_music, cell):
    """The same parameters score the same NLL whatever the eval batch (padding, which pieces share a
    batch) and window length (carry passed on within a piece vs one window per piece)."""
    base = music_config(tiny_music, cell)
    setup = prepare(base)
    params = create_train_state(base, setup.model, setup.tx, jax.random.key(1)).params
    ref = None
    for B, T in ((1, 100), (2, 10), (5, 7), (4, 3)):
        c = music_config(tiny_music, cell, **{"eval.batch_size": B, "eval.bptt": T})
        s = prepare(c)
        m = s.evaluate(c, params, "valid")
        ref = ref or m
        assert m["count"] == ref["count"]
        assert m["nll"] == pytest.approx(ref["nll"], rel=2e-6)


def test_piece_alone_equals_its_share(tiny_music):
    """Each piece starts from a zero carry: the sum over pieces evaluated one by one equals the split."""
    c = music_config(tiny_music, "gru_cho", **{"eval.batch_size": 3, "eval.bptt": 6})
    setup = prepare(c)
    params = create_train_state(c, setup.model, setup.tx, jax.random.key(2)).params
    whole = setup.evaluate(c, params, "test")
    total = 0.0
    for piece in setup.corpus.test:
        setup.corpus.valid = [piece]
        setup.eval_data.pop("valid", None)
        total += setup.evaluate(c, params, "valid")["nll_sum"]
    assert total == pytest.approx(whole["nll_sum"], rel=2e-6)


def test_chung_parameter_counts():
    """Chung et al. count the input and recurrent weights of the one layer (~20K on their 93-108-dim
    inputs); on 88-dim frames: tanh 100 -> 18,800 (+200 biases), GRU 46 -> 18,492, LSTM 36 -> 17,856 + 108
    peepholes. The runs' num_params adds the biases and the 88-unit readout."""
    from rnnlab.cells import get_cell

    weights = {}
    for name, H in CHUNG.items():
        p = get_cell(name).init(jax.random.key(0), 88, H)
        weights[name] = sum(v.size for k, v in p.items() if k.startswith(("w_", "p_")))
    assert weights == {"rnn": 88 * 100 + 100 * 100, "gru_cho": 3 * (88 * 46 + 46 * 46),
                       "lstm_peephole": 4 * (88 * 36 + 36 * 36) + 3 * 36}


def test_weight_noise_gradient_at_noisy_params_update_of_clean(tiny_music):
    c = music_config(tiny_music, "rnn", **{"train.weight_noise": 0.075, "train.optimizer": "sgd", "train.lr": 0.1,
                                           "train.clip_norm": 0.0})
    setup = prepare(c)
    state = create_train_state(c, setup.model, setup.tx, jax.random.key(0))
    step = jax.jit(make_train_step(setup.model, setup.tx, c))
    key = jax.random.key(5)
    batch = setup.train.batch(0)
    new, _ = step(state, batch, key)
    # by hand: the gradient at params + noise (the step's own key), applied to the clean params
    from rnnlab.forcing import make_loss_fn

    k = jax.random.fold_in(key, state.step)
    noisy = add_weight_noise(state.params, k, 0.075)
    grads = jax.grad(lambda p: make_loss_fn(setup.model, c)(p, state.carries, batch, k, state.step)[0])(noisy)
    want = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, state.params, grads)
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    diff = [float(jnp.abs(n - p).max()) for n, p in zip(jax.tree_util.tree_leaves(noisy),
                                                         jax.tree_util.tree_leaves(state.params))]
    assert 0.1 < max(diff) < 0.6  # the noise is there, at about 0.075 x 4 std


@pytest.mark.parametrize("cell", sorted(CHUNG))
@pytest.mark.parametrize("mode", ["teacher_forcing", "scheduled_sampling"])
def test_tiny_music_runs(tiny_music, tmp_path, cell, mode):
    s = train_and_evaluate(music_config(tiny_music, cell, **{"train.mode": mode, "train.weight_noise": 0.075}),
                           tmp_path / "run")
    assert s["status"] == "finished" and s["level"] == "frame"
    for k in ("train_nll", "val_nll", "best_val_nll", "test_nll", "test_nll_per_key"):
        assert math.isfinite(s[k]), k
    assert s["test_nll_per_key"] == pytest.approx(s["test_nll"] / 88)
    assert s["test_frames"] == 21 + 7 + 35 + 16 - 4
    assert "test_ppl" not in s
    assert s["test_nll"] < 88 * math.log(2.0)  # learned something: better than p = 1/2 for every key
    io = json.loads((tmp_path / "run" / "io.json").read_text())
    assert io == {"kind": "frames", "num_features": 88, "head": "bernoulli"}


def test_early_stopping_evaluates_the_best_checkpoint(tiny_music, tmp_path):
    """A learning rate that makes validation worse after the first epochs: training stops after
    `patience` validations without improvement, and test is scored with the best checkpoint."""
    c = music_config(tiny_music, "rnn", **{"train.lr": 0.3, "train.epochs": 12, "train.early_stop_patience": 2,
                                           "train.optimizer": "sgd", "train.clip_norm": 0.0})
    s = train_and_evaluate(c, tmp_path / "run")
    hist = s["val_history"]
    best = min(hist, key=lambda h: h["val_nll"])
    assert s["early_stopped"] and s["steps"] < 12 * s["steps_per_epoch"]
    assert s["evaluated_step"] == best["step"]
    assert hist[-1]["step"] == best["step"] + 2 * s["steps_per_epoch"]  # stopped after 2 worse validations
    assert s["val_nll"] == pytest.approx(best["val_nll"], rel=1e-6) == s["best_val_nll"]


def test_music_resume_is_exact(tiny_music, tmp_path, monkeypatch):
    from _tiny import interrupted_run

    c = music_config(tiny_music, "gru_cho", **{"train.mode": "scheduled_sampling", "train.weight_noise": 0.075,
                                               "checkpoint.every_steps": 3})
    ref = train_and_evaluate(c, tmp_path / "ref")
    interrupted_run(monkeypatch, tmp_path / "cut", "step", 7, c)
    again = train_and_evaluate(c, tmp_path / "cut")
    assert again["params_sha256"] == ref["params_sha256"] and again["test_nll"] == ref["test_nll"]
