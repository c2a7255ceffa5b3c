"""Unreadable or inconsistent runs are listed with the file and the reason, never averaged and
never dropped; bad plot formats are refused before anything is written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import done, write_run

from rnnlab import RnnlabError, report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def good(tmp_path):
    """Two finished rnn seeds (test ppl 2.0 and 3.0): the numbers no bad run may change."""
    root = tmp_path / "runs"
    for seed, t in ((0, 2.0), (1, 3.0)):
        write_run(root, f"s{seed}", seed=seed, summary=done(t, t))
    return root


def _only(runs, name):
    (r,) = [r for r in runs if r["name"] == name]
    return r


def _check_means_untouched(root, n_bad):
    runs = report.load_runs(root)
    assert len(runs) == 2 + n_bad and len(report.unreadable_runs(runs)) == n_bad
    _, rows = report.aggregate(runs)
    assert [(r["n"], r["seeds"], r["test_ppl_mean"]) for r in rows] == [(2, [0, 1], 2.5)]
    return runs, rows


def test_truncated_config_is_listed_and_a_folder_of_only_those_is_not_empty(good, tmp_path):
    text = (good / "s0" / "config.json").read_text()
    bad = write_run(good, "s2", seed=2, summary=done(9.0, 9.0))
    (bad / "config.json").write_text(text[:40])
    runs, _ = _check_means_untouched(good, 1)
    r = _only(runs, "s2")
    assert r["status"] == "unreadable" and r["config"] is None and r["file"] == f"{bad}/config.json"
    assert r["error"].startswith("config.json: is not valid JSON (") and r["error"].endswith("; truncated?)")
    md = report.build_table(good)[1]
    assert md.splitlines()[-2:] == ["unreadable runs (1; left out of every mean):", f"- {bad}/{r['error']}"]

    only = tmp_path / "only_bad"
    for name in ("a", "b"):
        (only / name).mkdir(parents=True)
        (only / name / "config.json").write_text(text[:10] if name == "a" else "")
    runs = report.load_runs(only)  # not "no run directories"
    assert [(r["name"], r["status"], r["error"].split(" (")[0]) for r in runs] == [
        ("a", "unreadable", "config.json: is not valid JSON"), ("b", "unreadable", "config.json: is empty")]
    rows, md = report.build_table(only)
    assert rows == [] and md.splitlines()[0] == "(no readable runs)"
    assert "unreadable runs (2; left out of every mean):" in md


def test_a_run_folder_without_config_json_is_listed(good):
    d = write_run(good, "s2", seed=2, summary=done(9.0, 9.0), val=[(10, 9.0, 1.0)])
    (d / "config.json").unlink()
    runs, _ = _check_means_untouched(good, 1)
    assert (_only(runs, "s2")["error"], _only(runs, "s2")["file"]) == ("config.json: is missing", f"{d}/config.json")


def test_truncated_summary_is_unreadable_not_incomplete(good):
    d = write_run(good, "s2", seed=2, summary=done(9.0, 9.0))
    (d / "summary.json").write_text(json.dumps(done(9.0, 9.0))[:30])
    runs, rows = _check_means_untouched(good, 1)
    r = _only(runs, "s2")
    assert r["status"] == "unreadable" and r["config"]["train.seed"] == 2 and r["file"] == f"{d}/summary.json"
    assert r["error"].startswith("summary.json: is not valid JSON")
    assert rows[0]["unfinished"][0]["status"] == "unreadable"  # its row says a seed is missing, and why
    md = report.build_table(good)[1]
    assert "| 2 | 1 unreadable (seed 2) |" in md and "incomplete" not in md
    assert not any(ln.startswith("- unreadable:") for ln in md.splitlines())  # listed once, in its section
    assert md.splitlines()[-1] == f"- {d}/{r['error']}"


@pytest.mark.parametrize("config, reason", [
    ({"model": 3}, "config.json: has no data, train sections (an rnnlab config.json has data, model, train)"),
    ("list", "config.json: holds a JSON list, not an object of config sections"),
    ("model=3", "config.json: model is 3, expected a section (a JSON object of fields)"),
    ("hidden=big", 'config.json: model.hidden_size is "big" (string), expected a number like 200'),
    ("schedule=leaf", "config.json: train.schedule is 0.5, expected a section (a JSON object of fields)"),
])
def test_wrong_config_structure_is_not_filled_with_defaults(good, config, reason):
    d = write_run(good, "s2", seed=2, summary=done(9.0, 9.0))
    full = json.loads((d / "config.json").read_text())
    if config == "list":
        config = [full]
    elif config == "model=3":
        config = {**full, "model": 3}
    elif config == "hidden=big":
        config = {**full, "model": {**full["model"], "hidden_size": "big"}}
    elif config == "schedule=leaf":
        config = {**full, "train": {**full["train"], "schedule": 0.5}}
    (d / "config.json").write_text(json.dumps(config))
    runs, _ = _check_means_untouched(good, 1)
    assert _only(runs, "s2")["error"] == reason


@pytest.mark.parametrize("summary, reason", [
    ({"status": "finished"}, "summary.json: says finished but has no best_val_ppl or test_ppl"),
    ([done(9.0, 9.0)], "summary.json: holds a JSON list, not an object"),
    ({"test_ppl": 9.0}, "summary.json: has no status (finished, failed or diverged)"),
    ({**done(9.0, 9.0), "test_ppl": "9.0"}, 'summary.json: test_ppl is "9.0", not a number'),
    ({**done(9.0, 9.0), "test_ppl": float("nan")}, "summary.json: says finished but test_ppl is nan"),
    ({**done(9.0, 9.0), "cell": "gru"}, 'summary.json: cell is "gru" but config.json has model.cell="rnn"'),
    ({**done(9.0, 9.0), "seed": 5}, "summary.json: seed is 5 but config.json has train.seed=2"),
    ({"status": "finished", "level": "frame", "test_nll": 8.1}, "summary.json: says finished but has no best_val_nll"),
])
def test_inconsistent_summary_is_no_seed(good, summary, reason):
    d = write_run(good, "s2", seed=2)
    (d / "summary.json").write_text(json.dumps(summary))
    runs, rows = _check_means_untouched(good, 1)
    assert _only(runs, "s2")["error"] == reason
    assert [u["status"] for u in rows[0]["unfinished"]] == ["unreadable"]


def test_write_report_lists_them_and_wandb_runs_get_the_same_checks(good, tmp_path):
    d = write_run(good, "s2", seed=2)
    (d / "summary.json").write_text("[1, 2]")
    res = report.write_report(good, tmp_path / "out", formats=("png",))
    want = [{"path": str(d), "file": f"{d}/summary.json", "reason": "summary.json: holds a JSON list, not an object"}]
    assert res["unreadable"] == want
    assert json.loads((tmp_path / "out" / "unreadable.json").read_text()) == want
    assert (tmp_path / "out" / "table.md").read_text().splitlines()[-1] == f"- {d}/summary.json: holds a JSON list, not an object"

    r = report.make_run(json.loads((d / "config.json").read_text()), {"status": "finished"}, [], path="wandb:e/p/x")
    assert (r["status"], r["file"]) == ("unreadable", "wandb:e/p/x/summary.json")


def test_bad_formats_are_refused_before_anything_is_written(good, tmp_path):
    assert {"png", "svg", "pdf"} <= set(report.supported_formats())
    assert report.check_formats(["PNG", ".pdf"]) == ("png", "pdf")
    with pytest.raises(RnnlabError, match=r"^plot format 'foo' not supported; allowed: .*\bpng\b.*\bsvg\b"):
        report.write_report(good, tmp_path / "lib_out", formats=("png", "foo"))
    assert not (tmp_path / "lib_out").exists()
    out = tmp_path / "cli_out"
    p = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={good}", f"--out={out}", "--formats=png,foo,bar"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    (line,) = p.stderr.strip().splitlines()
    assert line.startswith("error: plot formats 'foo', 'bar' not supported; allowed: ") and "pdf" in line
    assert not out.exists()
