"""Faults (issue 7): non-finite numbers (stop as diverged, or skip and count), damaged checkpoints
(fall back, or say none is usable), checkpoints that do not fit (refused), a full disk while
saving or logging (one line; what was written stays intact; re-running resumes exactly), and a
diverging member of a sweep or of a vmapped group of seeds (reported as diverged, the rest finish)."""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab.faults as faults
import rnnlab.train as train_mod
from rnnlab import RnnlabError
from rnnlab.checkpoint import Checkpointer
from rnnlab.kill_resume import compare_runs
from rnnlab.tracking import read_jsonl
from _tiny import interrupted_run, tiny_config
from rnnlab.train import create_train_state, make_train_step, prepare, split_keys, train_and_evaluate


def copy_of(stopped, tmp_path):
    wd = tmp_path / "run"
    shutil.copytree(stopped, wd)
    return wd


def inject_nonfinite(monkeypatch, bad_steps, what="loss", when=None):
    """Make the loss non-finite at the updates ``bad_steps`` (1-based, as metrics.jsonl counts):
    what='loss' -> the loss alone is NaN (its gradient stays finite); 'grads' -> loss and gradients
    are NaN. ``when(params, cfg)`` -> traced bool narrows it (e.g. to one seed)."""
    original = train_mod.make_loss_fn
    bad = jnp.asarray([s - 1 for s in bad_steps], jnp.int32)  # state.step before the update

    def make_loss_fn(model, cfg):
        f = original(model, cfg)

        def loss_fn(params, carries, batch, key, step):
            loss, aux = f(params, carries, batch, key, step)
            hit = jnp.any(step == bad)
            if when is not None:
                hit = hit & when(params, cfg)
            if what == "loss":
                return jnp.where(hit, jnp.nan, loss), aux
            return loss * jnp.where(hit, jnp.nan, 1.0), aux

        return loss_fn

    monkeypatch.setattr(train_mod, "make_loss_fn", make_loss_fn)


# ----------------------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("what", ["loss", "grads"])
def test_nonfinite_stops_the_run_as_diverged(tmp_path, monkeypatch, what):
    wd = tmp_path / "run"
    inject_nonfinite(monkeypatch, [13], what)
    with pytest.raises(faults.Diverged) as e:
        train_and_evaluate(tiny_config(), wd)
    msg = str(e.value)
    assert e.value.step == 13 and "\n" not in msg
    assert "non-finite loss or gradient at step 13" in msg and "last good checkpoint: step 10" in msg
    s = json.loads((wd / "summary.json").read_text())
    assert s["status"] == "diverged" and s["diverged_step"] == 13 and s["last_checkpoint_step"] == 10
    assert s["error"] == msg and s["cell"] == "lstm" and s["seed"] == 0
    # nothing after the bad step was logged or saved; the last checkpoint is good
    assert max(r["step"] for r in read_jsonl(wd / "metrics.jsonl")) == 12
    assert sorted(int(p.name) for p in (wd / "checkpoints" / "latest").iterdir()) == [5, 10]
    setup = prepare(tiny_config())
    target = create_train_state(tiny_config(), setup.model, setup.tx, split_keys(0)["init"])
    ck = Checkpointer(wd)
    state, meta, step = ck.resume(target)
    ck.close()
    assert step == 10 and int(state.step) == 10
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state.params))
    # re-running reports the divergence again without training
    monkeypatch.setattr(train_mod, "prepare", lambda cfg: pytest.fail("a diverged run was trained again"))
    with pytest.raises(faults.Diverged) as again:
        train_and_evaluate(tiny_config(), wd)
    assert str(again.value) == msg


@pytest.mark.parametrize("what", ["loss", "grads"])
def test_skip_nonfinite_skips_and_counts(tmp_path, monkeypatch, what):
    wd = tmp_path / "run"
    inject_nonfinite(monkeypatch, [3, 7, 30], what)
    s = train_and_evaluate(tiny_config(**{"train.skip_nonfinite": True}), wd)
    assert s["status"] == "finished" and s["skipped_steps"] == 3 and s["steps"] == 48
    assert np.isfinite(s["test_ppl"]) and s["test_ppl"] < 7.0  # 7 symbols: it still learned
    recs = [r for r in read_jsonl(wd / "metrics.jsonl") if "train/loss" in r]
    assert sum(r["train/skipped"] for r in recs) == 3
    assert {r["step"]: r["train/skipped"] for r in recs}[4] == 1.0  # step 3 is in the window (0, 4]
    assert all(np.isfinite(r["train/loss"]) for r in recs)


def test_a_skipped_update_changes_nothing_but_the_step(monkeypatch):
    """The pure step with a NaN loss at update 1: params, optimizer state (inner) and carries as
    they were, step + 1, metrics nonfinite = skipped = 1 and zero sums; update 2 applies."""
    inject_nonfinite(monkeypatch, [1], "loss")
    cfg = tiny_config(**{"train.skip_nonfinite": True})
    setup = prepare(cfg)
    state = create_train_state(cfg, setup.model, setup.tx, split_keys(0)["init"])
    state = state.replace(carries=jax.tree_util.tree_map(lambda c: c + 0.5, state.carries))
    step = jax.jit(make_train_step(setup.model, setup.tx, cfg))
    batch = (setup.x_tr[0], setup.y_tr[0])
    s1, m1 = step(state, batch, split_keys(0)["dropout"])
    same = jax.tree_util.tree_map(lambda a, b: bool(jnp.array_equal(a, b)), (s1.params, s1.carries, s1.opt_state.inner_state),
                                  (state.params, state.carries, state.opt_state.inner_state))
    assert all(jax.tree_util.tree_leaves(same))
    assert int(s1.step) == 1 and int(s1.opt_state.total_notfinite) == 1
    assert float(m1["nonfinite"]) == 1.0 and float(m1["skipped"]) == 1.0
    assert float(m1["nll_sum"]) == 0.0 and float(m1["steps"]) == 0.0
    s2, m2 = step(s1, batch, split_keys(0)["dropout"])
    assert float(m2["skipped"]) == 0.0 and float(m2["steps"]) == 1.0 and int(s2.opt_state.notfinite_count) == 0
    assert not bool(jnp.array_equal(jax.tree_util.tree_leaves(s2.params)[0], jax.tree_util.tree_leaves(s1.params)[0]))


def test_too_many_skips_in_a_row_is_a_divergence(tmp_path, monkeypatch):
    wd = tmp_path / "run"
    inject_nonfinite(monkeypatch, range(6, 49), "grads")
    with pytest.raises(faults.Diverged) as e:
        train_and_evaluate(tiny_config(**{"train.skip_nonfinite": True, "train.max_skips_in_a_row": 3}), wd)
    # updates 6, 7, 8 skipped (logged at step 8), 9 is the 4th in a row: seen at the next boundary, 10
    assert "5 updates in a row had a non-finite loss or gradient (up to step 10)" in str(e.value)
    s = json.loads((wd / "summary.json").read_text())
    assert s["status"] == "diverged" and s["last_checkpoint_step"] == 5 and s["skipped_steps"] == 3
    assert max(int(p.name) for p in (wd / "checkpoints" / "latest").iterdir()) == 5


def test_one_vmapped_seed_diverges_the_other_finishes(tmp_path, monkeypatch):
    """Seeds trained as one vmapped program: seed 1 (its first embedding weight < -0.05) gets a NaN
    at update 3 and is reported diverged; seed 0 finishes with the numbers it has alone."""
    from rnnlab.multiseed import train_seeds

    inject_nonfinite(monkeypatch, [3], "grads",
                     when=lambda params, cfg: jax.tree_util.tree_leaves(params)[0].reshape(-1)[0] < -0.05)
    cfg = tiny_config(**{"train.epochs": 1})
    out = train_seeds(cfg, {0: tmp_path / "s0", 1: tmp_path / "s1"})
    assert out[1]["status"] == "diverged" and out[1]["diverged_step"] == 3
    assert out[0]["status"] == "finished"
    alone = train_and_evaluate(tiny_config(**{"train.epochs": 1}), tmp_path / "alone")
    for k in ("test_ppl", "val_ppl", "best_val_ppl"):  # vmapped = alone up to float rounding (test_multiseed)
        assert out[0][k] == pytest.approx(alone[k], rel=1e-5), k
    assert json.loads((tmp_path / "s1" / "summary.json").read_text())["status"] == "diverged"


def test_sweep_reports_a_diverged_member_and_finishes_the_rest(tmp_path, monkeypatch):
    from rnnlab.sweep import member_status, run_sweep, simple_table, summaries

    inject_nonfinite(monkeypatch, [5], "grads", when=lambda params, cfg: jnp.asarray(cfg.model.cell == "gru"))
    said = []
    sweep = {"product": {"model.cell": ["gru", "lstm"]}}
    index = run_sweep(tiny_config(**{"train.epochs": 1}), tmp_path, sweep, say=said.append)
    status = {m["name"]: m["status"] for m in index["members"]}
    assert sorted(status.values()) == ["diverged", "finished"], status
    gru = next(n for n in status if "gru" in n)
    assert status[gru] == "diverged" and any("DIVERGED" in line and "step 5" in line for line in said)
    assert json.loads((tmp_path / gru / "summary.json").read_text())["diverged_step"] == 5
    assert "diverged: training diverged" in simple_table(summaries(tmp_path))
    # a re-run does not train either again and keeps the statuses
    monkeypatch.setattr(train_mod, "prepare", lambda cfg: pytest.fail("trained again"))
    index = run_sweep(tiny_config(**{"train.epochs": 1}), tmp_path, sweep, say=said.append)
    assert {m["name"]: m["status"] for m in index["members"]} == status
    assert member_status(tmp_path / gru)["status"] == "diverged"


# ----------------------------------------------------------------------------- damaged checkpoints
def _truncate_arrays(ck):
    for f in (ck / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


CORRUPTIONS = {
    "truncated_array_files": _truncate_arrays,
    "missing_meta_item": lambda ck: shutil.rmtree(ck / "meta"),
    "meta_not_json": lambda ck: (ck / "meta" / "metadata").write_text('{"best_val_ppl": 3.1, "hist'),
    "missing_state_item": lambda ck: shutil.rmtree(ck / "state"),
    "empty_state_metadata": lambda ck: (ck / "state" / "_METADATA").write_text(""),
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_damaged_latest_checkpoint_falls_back_to_the_previous(reference, stopped13, tmp_path, capfd, damage):
    ref, ref_summary = reference
    wd = copy_of(stopped13, tmp_path)  # checkpoints 5 and 10
    CORRUPTIONS[damage](wd / "checkpoints" / "latest" / "10")
    capfd.readouterr()
    summary = train_and_evaluate(tiny_config(), wd)
    stderr = capfd.readouterr().err
    err = [ln for ln in stderr.splitlines() if ln.startswith("warning:")]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert len(err) == 1 and "unusable checkpoint(s)" in err[0] and "latest/10" in err[0]
    assert "resuming from latest/5" in err[0]
    assert (wd / "checkpoints" / "unusable" / "latest_10").is_dir()
    assert summary["params_sha256"] == ref_summary["params_sha256"]  # resumed from 5: still exact
    assert compare_runs(ref, wd) == []


def test_no_usable_checkpoint_is_one_clear_error(stopped13, tmp_path):
    wd = copy_of(stopped13, tmp_path)
    for step in (5, 10):
        _truncate_arrays(wd / "checkpoints" / "latest" / str(step))
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(), wd)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"no usable checkpoint in {wd / 'checkpoints'} (latest/10: ")
    assert "latest/5: " in msg and "train this run from the start" in msg
    assert sorted(p.name for p in (wd / "checkpoints" / "latest").iterdir()) == ["10", "5"]  # nothing moved


def test_checkpoint_of_another_model_shape_is_refused(stopped13, tmp_path):
    """A run directory whose checkpoints were written by another model (here: config.json swapped,
    as when checkpoints are copied between runs) is refused, not silently restored into new shapes:
    by the config each checkpoint keeps (issue 11), and, for checkpoints written before they kept
    it, by their shapes."""
    wd = copy_of(stopped13, tmp_path)
    cfg16 = tiny_config(**{"model.hidden_size": 16})
    (wd / "config.json").write_text(json.dumps(json.loads(cfg16.to_json())))
    with pytest.raises(RnnlabError, match=r"holds a different run's checkpoint latest/10 \(its config\) "
                                          r"\(model.hidden_size: 12 -> 16\)"):
        train_and_evaluate(cfg16, wd)
    for step in ("5", "10"):  # checkpoints that keep no config
        m = wd / "checkpoints" / "latest" / step / "meta" / "metadata"
        m.write_text(json.dumps({k: v for k, v in json.loads(m.read_text()).items() if k != "config"}))
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(cfg16, wd)
    msg = str(e.value)
    assert "\n" not in msg and "checkpoint latest/10" in msg and "does not match the config and data" in msg
    assert re.search(r"is float32\[(\d+, )*(12|48)\] there, float32\[(\d+, )*(16|64)\] here", msg), msg
    assert sorted(p.name for p in (wd / "checkpoints" / "latest").iterdir()) == ["10", "5"]


def test_data_whose_vocabulary_changed_is_refused(tmp_path, monkeypatch):
    text = tmp_path / "corpus.txt"
    text.write_text("abcabcab\n" * 400)
    cfg = tiny_config(**{"data.name": "text", "data.path": str(text)})
    wd = tmp_path / "run"
    interrupted_run(monkeypatch, wd, "step", 7, cfg)  # a checkpoint at step 5
    text.write_text("abxabxab\n" * 400)  # same size of vocabulary, another token
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(cfg, wd)
    msg = str(e.value)
    assert "\n" not in msg and "was trained on a different vocabulary" in msg and "'c'" in msg and "'x'" in msg
    text.write_text("abcdabcd\n" * 400)  # more tokens
    with pytest.raises(RnnlabError, match=r"\(4 tokens in vocab.json, 5 in the data now\)"):
        train_and_evaluate(cfg, wd)


# ----------------------------------------------------------------------------- full disk
def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_a_checkpoint_save(reference, tmp_path, monkeypatch):
    """The 3rd checkpoint (step 15) fails after orbax wrote its data, before the rename: one line
    naming the step and the reason; no temporary folder left; checkpoint 10 and metrics.jsonl as
    they were; re-running (space freed) ends exactly like an uninterrupted run."""
    from orbax.checkpoint._src.path import atomicity

    ref, ref_summary = reference
    wd = tmp_path / "run"
    original = atomicity.AtomicRenameTemporaryPath.finalize
    calls = {"n": 0}

    async def finalize(self, *args, **kwargs):
        if self.get_final().name.isdigit():
            calls["n"] += 1
            if calls["n"] == 3:
                _enospc()
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(), wd)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"could not save checkpoint step 15 in {wd / 'checkpoints'}: no space left on device")
    assert "the last complete checkpoint (step 10) and the metrics logged so far are intact" in msg
    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", original)
    assert sorted(p.name for p in (wd / "checkpoints" / "latest").iterdir()) == ["10", "5"]
    ref_lines = (ref / "metrics.jsonl").read_text().splitlines()
    got = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in got] == [4, 8, 12]
    drop = {"wall_s", "train/tokens_per_sec"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in got] == [
        {k: v for k, v in json.loads(x).items() if k not in drop} for x in ref_lines[:3]]
    summary = train_and_evaluate(tiny_config(), wd)
    assert summary["params_sha256"] == ref_summary["params_sha256"] and compare_runs(ref, wd) == []


def test_disk_full_while_logging_metrics(reference, tmp_path, monkeypatch):
    from rnnlab.tracking import JSONLLogger

    ref, ref_summary = reference
    wd = tmp_path / "run"
    original = JSONLLogger.log
    calls = {"n": 0}

    def log(self, step, metrics):
        calls["n"] += 1
        if calls["n"] == 5:
            self._f.write('{"step": 20, "train/lo')  # half a line reached the disk
            self._f.flush()
            _enospc()
        return original(self, step, metrics)

    monkeypatch.setattr(JSONLLogger, "log", log)
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(), wd)
    assert str(e.value).startswith(f"could not write to run directory {wd}: no space left on device; ")
    monkeypatch.setattr(JSONLLogger, "log", original)
    summary = train_and_evaluate(tiny_config(), wd)
    assert summary["params_sha256"] == ref_summary["params_sha256"] and compare_runs(ref, wd) == []


def _mount_tmpfs(path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def test_a_real_full_disk(reference, tmp_path):
    """A 160 KiB tmpfs (needs root; skipped elsewhere): the run stops at the save that does not fit
    with one line, keeps what it wrote; with the disk grown, re-running finishes exactly."""
    ref, ref_summary = reference
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk, "160k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        wd = disk / "run"
        with pytest.raises(RnnlabError) as e:
            train_and_evaluate(tiny_config(), wd)
        msg = str(e.value)
        assert "\n" not in msg and "no space left on device" in msg, msg
        assert not list((wd / "checkpoints").glob("*/*.orbax-checkpoint-tmp*"))
        done = [json.loads(x) for x in (wd / "metrics.jsonl").read_text().splitlines() if x.endswith("}")]
        assert done and done[0]["step"] == 4
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        summary = train_and_evaluate(tiny_config(), wd)
        assert summary["params_sha256"] == ref_summary["params_sha256"] and compare_runs(ref, wd) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
