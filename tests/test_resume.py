"""Checkpoints and resume (issue 4, Checkpoints; issue 7, kills): a run stopped mid-way and re-run
ends bit for bit where an uninterrupted run ends; keep last k + best; a workdir holding another
run's config is refused; leftovers of a killed process (torn metrics line, orbax temporary folder)
do no harm. The kill -9 version through the CLI is at the end (subprocesses, RNNLAB_KILL_AT)."""
from __future__ import annotations

import json
import shutil

import pytest

from rnnlab import RnnlabError
from rnnlab.kill_resume import compare_runs, kill_resume
from rnnlab.tracking import read_jsonl
from _tiny import interrupted_run, tiny_config
from rnnlab.train import train_and_evaluate


@pytest.mark.parametrize("point,n", [("step", 13), ("step", 21), ("eval", 1)])
def test_stop_and_resume_is_bit_exact(reference, stopped13, tmp_path, monkeypatch, point, n):
    """Stopped in step 13 (checkpoint at 10, the line of step 12 logged after it), in step 21 (just
    after the checkpoint at 20), or inside the first validation (step 24, its train line logged):
    the resumed run's summary and metrics.jsonl equal the uninterrupted run's (timings aside)."""
    ref, ref_summary = reference
    wd = tmp_path / "run"
    if (point, n) == ("step", 13):
        shutil.copytree(stopped13, wd)
    else:
        interrupted_run(monkeypatch, wd, point, n)
    assert not (wd / "summary.json").exists()
    summary = train_and_evaluate(tiny_config(), wd)
    assert summary["params_sha256"] == ref_summary["params_sha256"]
    assert summary["test_ppl"] == ref_summary["test_ppl"] and summary["val_ppl"] == ref_summary["val_ppl"]
    assert compare_runs(ref, wd) == []
    assert len(read_jsonl(wd / "metrics.jsonl")) == len(read_jsonl(ref / "metrics.jsonl"))


def test_resume_twice_and_torn_metrics_line(reference, stopped13, tmp_path, monkeypatch):
    """A half-written last line in metrics.jsonl (a kill mid-write), and a second interruption."""
    ref, ref_summary = reference
    wd = tmp_path / "run"
    shutil.copytree(stopped13, wd)
    with open(wd / "metrics.jsonl", "a") as f:
        f.write('{"step": 16, "train/lo')
    interrupted_run(monkeypatch, wd, "step", 20)  # resumed from step 10: its 20th step is step 30
    assert max(r["step"] for r in read_jsonl(wd / "metrics.jsonl")) == 28
    summary = train_and_evaluate(tiny_config(), wd)
    assert summary["params_sha256"] == ref_summary["params_sha256"]
    assert compare_runs(ref, wd) == []


def test_orbax_temporary_folder_is_ignored_and_removed(reference, stopped13, tmp_path):
    """A folder left by a save killed before its rename (orbax writes <step>.orbax-checkpoint-tmp)
    is not a checkpoint: resume uses the last complete one and the folder is cleaned up."""
    ref, ref_summary = reference
    wd = tmp_path / "run"
    shutil.copytree(stopped13, wd)
    latest = wd / "checkpoints" / "latest"
    shutil.copytree(latest / "10", latest / "15.orbax-checkpoint-tmp")
    (latest / "15.orbax-checkpoint-tmp" / "commit_success.txt").unlink(missing_ok=True)
    summary = train_and_evaluate(tiny_config(), wd)
    assert summary["params_sha256"] == ref_summary["params_sha256"]
    assert compare_runs(ref, wd) == []


def test_keep_last_k_and_best(reference):
    """latest/ keeps checkpoint.keep steps (the last ones); best/ holds the step of the lowest
    validation perplexity; both restore to the same parameters as the run had at that step."""
    ref, summary = reference
    latest = sorted(int(p.name) for p in (ref / "checkpoints" / "latest").iterdir() if p.name.isdigit())
    best = sorted(int(p.name) for p in (ref / "checkpoints" / "best").iterdir() if p.name.isdigit())
    assert latest == [45, 48]
    hist = summary["val_history"]
    assert [h["step"] for h in hist] == [24, 48]
    assert best == [min(hist, key=lambda h: h["val_ppl"])["step"]]
    meta = json.loads((ref / "checkpoints" / "best" / str(best[0]) / "meta" / "metadata").read_text())
    assert meta["best_val_ppl"] == min(h["val_ppl"] for h in hist)


def test_finished_run_is_not_trained_again(reference, monkeypatch):
    ref, summary = reference
    monkeypatch.setattr("rnnlab.train.prepare", lambda cfg: pytest.fail("a finished run was prepared again"))
    assert train_and_evaluate(tiny_config(), ref) == summary


def test_workdir_with_another_config_is_refused(reference):
    ref, _ = reference
    before = (ref / "config.json").read_text()
    with pytest.raises(RnnlabError) as e:
        train_and_evaluate(tiny_config(**{"model.hidden_size": 16}), ref)
    msg = str(e.value)
    assert "\n" not in msg and "holds a different run's config" in msg and "model.hidden_size: 12 -> 16" in msg
    assert (ref / "config.json").read_text() == before
    # fields that only change where output goes or how it is shown are not a different run
    assert train_and_evaluate(tiny_config(**{"train.progress": True}), ref)["status"] == "finished"


def _small_quickstart():
    """configs/quickstart.py with kill_resume.SMALL and the quiet flags applied, as the CLI gets them."""
    import importlib.util

    from rnnlab.kill_resume import REPO, SMALL, train_command

    spec = importlib.util.spec_from_file_location("_qs", REPO / "configs" / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = module.get_config()
    flags = [a for a in train_command("configs/quickstart.py", "x", SMALL) if a.startswith("--config.")]
    for flag in flags:
        field, value = flag[len("--config."):].split("=", 1)
        sec, name = field.split(".")
        old = cfg[sec][name]
        cfg[sec][name] = (value == "True") if isinstance(old, bool) else type(old)(value)
    return cfg


def test_kill_9_and_resume_through_the_cli(tmp_path):
    """The short kill-and-resume experiment (experiments/kill_resume.py --points=save:2,step:8):
    SIGKILL inside the 2nd checkpoint save (orbax temporary folder left behind), then at the 8th
    step of the next process; the third run finishes. Its summary.json and metrics.jsonl equal an
    uninterrupted run's (made in this process: the CLI gives the same bits, see the slow test)."""
    ref = tmp_path / "reference"
    train_and_evaluate(_small_quickstart(), ref, config_file="configs/quickstart.py")
    report = kill_resume("configs/quickstart.py", tmp_path, trials=0, points=("save:2", "step:8"), reference=ref,
                         log=lambda msg: None)
    (trial,) = report["trials"]
    assert [k["killed"] for k in trial["kills"]] == [True, True], trial
    assert trial["kills"][0]["in_save"] and trial["kills"][0]["latest_checkpoint"] == 5
    assert not trial["kills"][1]["in_save"] and trial["kills"][1]["latest_checkpoint"] == 10
    assert trial["final_rc"] == 0 and trial["diffs"] == [] and report["matched"] == 1


@pytest.mark.slow
def test_kill_9_at_random_times(tmp_path):
    """The full experiment: a CLI reference run, 5 trials of 1-3 kills at random times and one
    killed in a save, a step and a validation."""
    report = kill_resume("configs/quickstart.py", tmp_path, trials=5, seed=1, points=("save:2", "step:8", "eval:1"),
                         log=lambda msg: None)
    assert report["matched"] == report["tried"] == 6, [t["diffs"] for t in report["trials"]]
