"""W&B mirroring: a tiny offline training, read back from the run's own .wandb file, equals
metrics.jsonl / config.json / summary.json; W&B failures never stop training."""
from __future__ import annotations

import json
import math
import shutil
import subprocess

import pytest

from rnnlab.config import base_config, to_dict
from rnnlab.tracking import WANDB_RUN_FILE, iter_wandb_records, read_jsonl, read_wandb_offline
from rnnlab.train import train_and_evaluate


def tiny_config(mode="offline", **over):
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 3_000, 600, 600
    c.model.cell = "gru"
    c.model.hidden_size, c.model.embed_size, c.model.num_layers = 8, 4, 1
    c.train.optimizer, c.train.lr = "adam", 0.01
    c.train.batch_size, c.train.bptt, c.train.epochs = 8, 10, 2
    c.train.log_every, c.train.progress = 7, False
    c.eval.batch_size = 4
    if "free_running" in c.eval:
        c.eval.free_running = False
    c.wandb.mode, c.wandb.project, c.wandb.group = mode, "rnnlab-test", "study-x"
    for k, v in over.items():
        sec, name = k.split(".")
        c[sec][name] = v
    return c


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):  # metrics.jsonl writes non-finite floats as strings
        a, b = float(a), float(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def jsonl_by_step(workdir) -> list[dict]:
    """metrics.jsonl with the records of one step merged in order (W&B keeps one row per step)."""
    rows: dict[int, dict] = {}
    for r in read_jsonl(workdir / "metrics.jsonl"):
        rows.setdefault(r["step"], {}).update(r)
    return [rows[s] for s in sorted(rows)]


def assert_history_equals_jsonl(wb: dict, workdir):
    want = jsonl_by_step(workdir)
    got = [{("step" if k == "_step" else k): v for k, v in row.items() if k == "_step" or not k.startswith("_")}
           for row in wb["history"]]
    assert len(got) == len(want) > 3
    for g, w in zip(got, want):
        assert set(g) == set(w), (sorted(g), sorted(w))
        for k in w:
            assert _same(g[k], w[k]), (w["step"], k, g[k], w[k])


def test_offline_run_reads_back_equal_to_run_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    workdir = tmp_path / "run_gru"
    cfg = tiny_config()
    summary = train_and_evaluate(cfg, workdir, run_name="gru_s0")

    run_id = json.loads((workdir / WANDB_RUN_FILE).read_text())["id"]
    wb = read_wandb_offline(workdir)
    assert wb["id"] == run_id and len(wb["files"]) == 1
    assert wb["files"][0].startswith(str(workdir / "wandb" / "offline-run-"))
    assert (wb["project"], wb["group"], wb["name"]) == ("rnnlab-test", "study-x", "gru_s0")
    assert wb["tags"] == ["gru", "teacher_forcing"]
    assert wb["config"] == to_dict(cfg) == json.loads((workdir / "config.json").read_text())
    assert_history_equals_jsonl(wb, workdir)
    disk = json.loads((workdir / "summary.json").read_text())
    for k in ("status", "test_ppl", "best_val_ppl", "num_params", "val_history", "optimal_ppl"):
        assert wb["summary"][k] == disk[k] == summary[k], k
    # the run ended cleanly (exit record with code 0)
    exits = [r.exit.exit_code for r in iter_wandb_records(wb["files"][0]) if r.WhichOneof("record_type") == "exit"]
    assert exits == [0]

    # W&B's own reader of the transaction log agrees with ours, row for row
    if shutil.which("wandb") is None:
        return
    out = subprocess.run(["wandb", "leet", "inspect", "--json", wb["files"][0]], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        pytest.skip(f"wandb leet inspect unavailable: {out.stderr.strip()[:200]}")
    leet = [json.loads(ln)["history"]["item"] for ln in out.stdout.splitlines() if '"type":"history"' in ln]
    assert len(leet) == len(wb["history"])
    for a, b in zip(leet, wb["history"]):
        assert set(a) == set(b) and all(_same(a[k], b[k]) for k in a)


def test_resumed_run_continues_the_same_wandb_run(tmp_path, monkeypatch):
    """Kill a run at step 15 (last checkpoint at step 10) and re-run it: one W&B id, two offline
    segments, and their merged history equals the finished run's metrics.jsonl."""
    import rnnlab.tracking as tracking

    monkeypatch.delenv("WANDB_MODE", raising=False)
    workdir = tmp_path / "run"
    cfg = tiny_config(**{"checkpoint.every_steps": 10, "train.log_every": 5})
    log = tracking.ProgressLogger.log

    def dying_log(self, step, metrics):
        if step == 15:
            raise KeyboardInterrupt  # after metrics.jsonl got step 15, before W&B did
        log(self, step, metrics)

    monkeypatch.setattr(tracking.ProgressLogger, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, workdir)
    monkeypatch.setattr(tracking.ProgressLogger, "log", log)
    id_first = json.loads((workdir / WANDB_RUN_FILE).read_text())["id"]
    assert max(r["step"] for r in read_jsonl(workdir / "metrics.jsonl")) == 15
    summary = train_and_evaluate(cfg, workdir)
    assert summary["status"] == "finished"
    wb = read_wandb_offline(workdir)
    assert wb["id"] == id_first and len(wb["files"]) == 2
    exits = [[r.exit.exit_code for r in iter_wandb_records(f) if r.WhichOneof("record_type") == "exit"]
             for f in wb["files"]]
    assert exits == [[1], [0]]  # the killed segment is marked failed
    assert_history_equals_jsonl(wb, workdir)
    assert wb["summary"]["test_ppl"] == summary["test_ppl"]


def test_wandb_failure_is_one_warning_and_training_goes_on(tmp_path, monkeypatch, capsys):
    """Online without an API key falls back to offline; a failing wandb.init disables W&B; either
    way the run finishes and metrics.jsonl is complete."""
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    s = train_and_evaluate(tiny_config("online", **{"train.epochs": 1}), tmp_path / "a")
    err = capsys.readouterr().err
    assert "logging offline instead" in err and s["status"] == "finished"
    assert len(read_wandb_offline(tmp_path / "a")["history"]) == len(jsonl_by_step(tmp_path / "a"))

    def broken_init(*a, **k):
        raise RuntimeError("service unavailable\nsecond line")

    monkeypatch.setattr(wandb, "init", broken_init)
    s = train_and_evaluate(tiny_config("offline", **{"train.epochs": 1}), tmp_path / "b")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "W&B" in ln]
    assert lines == ["warning: W&B init (offline) failed: RuntimeError: service unavailable; "
                     "W&B disabled for this run; metrics.jsonl is unaffected"]
    assert s["status"] == "finished" and not (tmp_path / "b" / "wandb").exists()
    assert len(read_jsonl(tmp_path / "b" / "metrics.jsonl")) > 2


def test_disabled_writes_no_wandb_files(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    train_and_evaluate(tiny_config("disabled", **{"train.epochs": 1}), tmp_path / "r")
    assert not (tmp_path / "r" / "wandb").exists() and not (tmp_path / "r" / WANDB_RUN_FILE).exists()
