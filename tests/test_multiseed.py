"""Seeds vmapped in one program (rnnlab.multiseed) against the seeds trained one by one.

Equality is to float32 rounding, not bitwise: under vmap each [B, H] @ [H, G] matmul becomes a
batched [S, B, H] @ [S, H, G] one, which XLA:CPU may sum in another order. One step differs by at
most a few ulps (measured ~1e-7 absolute); over a run Adam amplifies such differences in
near-zero gradient coordinates, so whole runs are compared on what they report (loss, perplexity)
to a relative 1e-5, not on raw parameters. Resuming a vmapped run is bitwise (same program).
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab.config import base_config
from rnnlab.multiseed import make_multiseed_step, train_seeds, unstack
from rnnlab.tracking import read_jsonl
from rnnlab.train import RunRecorder, create_train_state, make_train_step, split_keys, train_and_evaluate


def tiny_cfg(cell="gru", seed=0):
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 3000, 400, 400
    c.model.cell = cell
    c.model.hidden_size, c.model.embed_size, c.model.num_layers = 8, 4, 1
    c.model.dropout = 0.1  # per-seed dropout keys are part of what must match
    c.train.seed = seed
    c.train.batch_size, c.train.bptt, c.train.epochs = 4, 10, 2
    c.train.optimizer, c.train.lr, c.train.clip_norm = "adam", 0.01, 1.0
    c.train.log_every, c.train.eval_every, c.train.progress = 7, 40, False
    c.checkpoint.every_steps = 25
    c.eval.batch_size = 4
    c.wandb.mode = "disabled"
    return c


def _maxdiff(a, b) -> float:
    d = jax.tree_util.tree_map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    return max(jax.tree_util.tree_leaves(d))


@pytest.mark.parametrize("cell", ["rnn", "lstm"])  # gru: in the whole-run tests below
def test_vmapped_steps_match_one_seed_steps(cell):
    cfg = tiny_cfg(cell)
    prog = make_multiseed_step(cfg, 3)
    assert prog.seeds == (0, 1, 2)
    assert all(x.shape[0] == 3 for x in jax.tree_util.tree_leaves(prog.state))
    one = jax.jit(make_train_step(prog.setup.model, prog.setup.tx, cfg))
    singles = [create_train_state(cfg, prog.setup.model, prog.setup.tx, split_keys(s)["init"]) for s in prog.seeds]
    # the stacked initial state is each seed's own initial state, exactly
    for i, st in enumerate(singles):
        assert _maxdiff(st.params, unstack(prog.state.params, i)) == 0.0
    state = prog.state
    for w in range(5):
        batch = (prog.x[w], prog.y[w])
        outs = [one(st, batch, split_keys(s)["dropout"]) for st, s in zip(singles, prog.seeds)]
        singles = [o[0] for o in outs]
        state, m = prog.step(state, batch, prog.keys)
        for i, (_, mi) in enumerate(outs):
            np.testing.assert_allclose(np.asarray(m["nll_sum"])[i], np.asarray(mi["nll_sum"]), rtol=1e-5)
            np.testing.assert_allclose(np.asarray(m["grad_norm_sum"])[i], np.asarray(mi["grad_norm_sum"]), rtol=1e-4)
    for i, st in enumerate(singles):
        assert _maxdiff(st.params, unstack(state.params, i)) < 1e-5
        assert int(unstack(state.step, i)) == 5
    # different seeds really are different runs
    assert _maxdiff(unstack(state.params, 0), unstack(state.params, 1)) > 1e-3


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory):
    root = tmp_path_factory.mktemp("one")
    return {s: (root / f"seed={s}", train_and_evaluate(tiny_cfg(seed=s), root / f"seed={s}")) for s in (0, 1)}


@pytest.fixture(scope="module")
def vmapped(tmp_path_factory):
    dirs = {s: tmp_path_factory.mktemp("vmapped") / f"seed={s}" for s in (0, 1)}
    return dirs, train_seeds(tiny_cfg(seed=7), dirs)  # the config's own seed is ignored


def test_train_seeds_writes_the_same_run_directories(one_by_one, vmapped):
    dirs, out = vmapped
    for s in (0, 1):
        ref_dir, ref = one_by_one[s]
        got = out[s]
        assert got["status"] == "finished" and got["seed"] == s
        assert sorted(got) == sorted(ref)  # the same summary keys
        assert json.loads((dirs[s] / "config.json").read_text())["train"]["seed"] == s
        assert json.loads((dirs[s] / "config.json").read_text()) == json.loads((ref_dir / "config.json").read_text())
        for k in ("test_ppl", "val_ppl", "best_val_ppl", "test_loss"):
            assert got[k] == pytest.approx(ref[k], rel=1e-5), k
        assert got["steps"] == ref["steps"] and got["num_params"] == ref["num_params"]
        assert [h["step"] for h in got["val_history"]] == [h["step"] for h in ref["val_history"]]
        a, b = read_jsonl(dirs[s] / "metrics.jsonl"), read_jsonl(ref_dir / "metrics.jsonl")
        assert [(r["step"], sorted(r)) for r in a] == [(r["step"], sorted(r)) for r in b]
        for ra, rb in zip(a, b):
            for k in ("train/loss", "val/ppl", "test/ppl", "train/lr", "train/eps"):
                if k in rb:
                    assert ra[k] == pytest.approx(rb[k], rel=1e-5), (ra["step"], k)
        ckpts = sorted(p.name for p in (dirs[s] / "checkpoints" / "latest").iterdir())
        assert ckpts == sorted(p.name for p in (ref_dir / "checkpoints" / "latest").iterdir())
    assert out[0]["test_ppl"] != out[1]["test_ppl"]
    # a finished seed is not trained again
    mtime = (dirs[0] / "summary.json").stat().st_mtime_ns
    assert train_seeds(tiny_cfg(), {0: dirs[0]})[0]["params_sha256"] == out[0]["params_sha256"]
    assert (dirs[0] / "summary.json").stat().st_mtime_ns == mtime


def _kill_at(monkeypatch, step_at, seed_at):
    save = RunRecorder.save

    def save_then_die(self, step, *a, **k):
        save(self, step, *a, **k)
        if step == step_at and self.cfg.train.seed == seed_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunRecorder, "save", save_then_die)
    return lambda: monkeypatch.setattr(RunRecorder, "save", save)


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in ("wall_s", "train/tokens_per_sec")} for r in rows]


@pytest.mark.parametrize("seed_at", [1, pytest.param(0, marks=pytest.mark.slow)])
def test_train_seeds_resumes_after_a_kill(vmapped, tmp_path, monkeypatch, seed_at):
    """Killed after both seeds saved step 50 (seed_at=1): the resumed program is the same, so the
    run equals an uninterrupted one bit for bit. Killed between seed 0's and seed 1's save
    (seed_at=0): the seeds resume from steps 50 and 25 as two programs (S=1 each), equal to the
    uninterrupted S=2 program to float32 rounding."""
    full_dirs, full = vmapped
    dirs = {s: tmp_path / "killed" / str(s) for s in (0, 1)}
    restore = _kill_at(monkeypatch, 50, seed_at)
    with pytest.raises(KeyboardInterrupt):
        train_seeds(tiny_cfg(), dirs)
    restore()
    latest = {s: max(int(p.name) for p in (dirs[s] / "checkpoints" / "latest").iterdir()) for s in dirs}
    assert latest == ({0: 50, 1: 50} if seed_at == 1 else {0: 50, 1: 25})
    out = train_seeds(tiny_cfg(), dirs)
    for s in (0, 1):
        a = _strip(read_jsonl(dirs[s] / "metrics.jsonl"))
        b = _strip(read_jsonl(full_dirs[s] / "metrics.jsonl"))
        if seed_at == 1:
            assert out[s]["params_sha256"] == full[s]["params_sha256"]
            assert out[s]["test_ppl"] == full[s]["test_ppl"]
            assert a == b
        else:
            assert out[s]["test_ppl"] == pytest.approx(full[s]["test_ppl"], rel=1e-5)
            assert [r["step"] for r in a] == [r["step"] for r in b]
            assert [r.get("train/loss") for r in a] == pytest.approx([r.get("train/loss") for r in b], rel=1e-5)
