"""report: run directories (and W&B runs) -> table rows with exact means / stds, Markdown, CSV,
LaTeX, learning curves. The run directories here are written by hand with known numbers (the
notebook test runs the report on real tiny trainings)."""
from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import RnnlabError, report
from rnnlab.config import base_config, to_dict

ROOT = Path(__file__).resolve().parents[1]


def write_run(root: Path, name: str, *, cell="rnn", mode="teacher_forcing", seed=0, summary=None,
              val=(), eps=None, over=None, drop=(), data="reber", val_key="val/ppl"):
    """A run directory: config.json (base_config + fields), summary.json (if given), metrics.jsonl
    with train records (train/eps) and validation records ``val`` = [(step, value of val_key, wall_s)]."""
    c = base_config()
    c.data.name, c.model.cell, c.train.mode, c.train.seed = data, cell, mode, seed
    c.model.hidden_size, c.model.num_layers = 16, 1
    for k, v in (over or {}).items():
        sec, *mid, last = k.split(".")
        node = c[sec]
        for m in mid:
            node = node[m]
        node[last] = v
    d = root / name
    d.mkdir(parents=True)
    cfg = to_dict(c)
    for k in drop:  # a config.json written before these fields existed
        sec, last = k.split(".")
        del cfg[sec][last]
    (d / "config.json").write_text(json.dumps(cfg))
    if summary is not None:
        (d / "summary.json").write_text(json.dumps(summary))
    lines = []
    for step, ppl, wall in val:
        if eps is not None:
            lines.append({"step": step, "train/loss": math.log(ppl), "train/eps": eps(step), "wall_s": wall - 0.5})
        lines.append({"step": step, val_key: ppl, "wall_s": wall})
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return d


def done(test_ppl, best, params=591, tps=1000.0, wall=10.0, **kw):
    return {"status": "finished", "test_ppl": test_ppl, "best_val_ppl": best, "num_params": params,
            "tokens_per_sec": tps, "wall_s": wall, "optimal_ppl": 1.5, **kw}


@pytest.fixture()
def study(tmp_path):
    root = tmp_path / "study"
    lin = lambda s: 1.0 - s / 100  # noqa: E731
    for seed, t, b in ((0, 2.0, 2.1), (1, 2.5, 2.4), (2, 3.0, 2.7)):
        write_run(root, f"rnn/s{seed}", cell="rnn", seed=seed, summary=done(t, b, tps=1000.0 * (seed + 1)),
                  val=[(10, 4.0 + seed, 1.0 + seed), (20, 3.0 + seed, 2.0 + seed)])
    write_run(root, "lstm/s0", cell="lstm", seed=0, summary=done(1.8, 1.9, params=1839), drop=("model.unroll",),
              val=[(10, 3.0, 1.0), (20, 2.0, 2.0)])
    write_run(root, "lstm/s1", cell="lstm", seed=1, summary=done(1.6, 1.7, params=1839),
              val=[(10, 5.0, 3.0), (20, 2.4, 4.0)])
    write_run(root, "lstm/s2", cell="lstm", seed=2, val=[(10, 9.0, 1.0)],
              summary={"status": "diverged", "error": "training diverged: loss nan at step 12"})
    write_run(root, "lstm/s3", cell="lstm", seed=3)  # started, never finished (no summary)
    for seed in (0, 1):
        write_run(root, f"ss/s{seed}", cell="lstm", mode="scheduled_sampling", seed=seed,
                  summary=done(4.0 + seed, 4.0 + seed, params=1839), val=[(10, 6.0, 1.0), (20, 5.0 + seed, 2.0)],
                  eps=lin, over={"train.schedule.kind": "linear"})
    # a W&B folder inside a run: its files are not runs
    (root / "rnn" / "s0" / "wandb" / "files").mkdir(parents=True)
    (root / "rnn" / "s0" / "wandb" / "files" / "config.json").write_text(json.dumps({"model": {}}))
    return root


def test_rows_have_exact_means_stds_and_unfinished_runs(study):
    runs = report.load_runs(study)
    assert len(runs) == 9
    fields, rows = report.aggregate(runs)
    assert fields == ["data.name", "model.cell", "train.mode", "model.hidden_size", "model.num_layers"]
    assert [(r["model.cell"], r["train.mode"], r["n"]) for r in rows] == [
        ("rnn", "teacher_forcing", 3), ("lstm", "teacher_forcing", 2), ("lstm", "scheduled_sampling", 2)]
    rnn, lstm, ss = rows
    assert rnn["seeds"] == [0, 1, 2] and rnn["num_params"] == 591
    assert rnn["test_ppl_mean"] == pytest.approx(2.5) and rnn["test_ppl_std"] == pytest.approx(0.5)
    assert rnn["best_val_ppl_mean"] == pytest.approx(2.4) and rnn["best_val_ppl_std"] == pytest.approx(0.3)
    assert rnn["tokens_per_sec_mean"] == pytest.approx(2000.0)
    assert lstm["test_ppl_mean"] == pytest.approx(1.7) and lstm["test_ppl_std"] == pytest.approx(math.sqrt(0.02))
    assert [(u["seed"], u["status"]) for u in lstm["unfinished"]] == [(2, "diverged"), (3, "incomplete")]
    assert ss["test_ppl_mean"] == pytest.approx(4.5) and ss["unfinished"] == []

    rows2, md = report.build_table(study)
    assert rows2 == rows
    lines = md.splitlines()
    assert lines[0] == ("| data | cell | mode | H | layers | params | best valid ppl | test ppl | optimal ppl | "
                        "tokens/s | time (s) | seeds | not finished |")
    assert lines[2] == ("| reber | rnn | teacher_forcing | 16 | 1 | 591 | 2.400 ± 0.300 | 2.500 ± 0.500 | 1.500 | "
                        "2,000 | 10.0 | 3 |  |")
    assert "| 1,839 | 1.800 ± 0.141 | 1.700 ± 0.141 |" in lines[3]
    assert lines[3].endswith("| 2 | 1 diverged (seed 2); 1 incomplete (seed 3) |")
    assert any(ln.startswith("- diverged: ") and ln.endswith("lstm/s2: training diverged: loss nan at step 12")
               for ln in lines)


def test_varying_fields_become_columns_and_unused_fields_do_not(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        for p in (0.0, 0.5):
            write_run(root, f"d{p}_s{seed}", seed=seed, over={"model.dropout": p, "train.log_every": 7 + seed},
                      summary=done(3.0 - p + seed, 3.0))
    # schedule settings of a teacher-forcing run are unused: they neither split rows nor show
    write_run(root, "tf_other_schedule", seed=2, over={"model.dropout": 0.5, "train.schedule.kind": "linear"},
              summary=done(3.0, 3.0))
    fields, rows = report.aggregate(report.load_runs(root))
    assert fields[5:] == ["model.dropout"]
    assert [(r["model.dropout"], r["n"], r["test_ppl_mean"]) for r in rows] == [(0.0, 2, 3.5), (0.5, 2 + 1, 3.0)]
    md = report.to_markdown(fields, rows)
    assert md.splitlines()[0].startswith("| data | cell | mode | H | layers | dropout | params |")


def test_csv_and_latex_hold_the_same_numbers(study, tmp_path):
    fields, rows = report.aggregate(report.load_runs(study))
    table = list(csv.DictReader(io.StringIO(report.to_csv(fields, rows))))
    assert [r["model.cell"] for r in table] == ["rnn", "lstm", "lstm"]
    assert float(table[0]["test_ppl_mean"]) == pytest.approx(2.5) and float(table[0]["test_ppl_std"]) == pytest.approx(0.5)
    assert table[0]["seeds"] == "0 1 2" and table[1]["unfinished"] == "1 diverged (seed 2); 1 incomplete (seed 3)"
    tex = report.to_latex(fields, rows)
    body = [ln for ln in tex.splitlines() if ln.endswith(r"\\")]
    assert len(body) == 1 + 3
    assert body[1].startswith(r"reber & rnn & teacher\_forcing & 16 & 1 & 591 & 2.400 $\pm$ 0.300 & 2.500 $\pm$ 0.500")
    assert tex.startswith(r"\begin{tabular}{lllllrrrrrrrr}") and r"\bottomrule" in tex


def test_curves_mean_and_band_over_seeds(study):
    runs = report.load_runs(study)
    rnn = [r for r in runs if r["config"]["model.cell"] == "rnn"]
    c = report.curve(rnn, "val/ppl", "step")
    assert c == {"x": [10.0, 20.0], "mean": [5.0, 4.0], "lo": [4.0, 3.0], "hi": [6.0, 5.0], "n": [3, 3]}
    w = report.curve(rnn, "val/ppl", "wall")
    assert w["x"] == [2.0, 3.0] and w["mean"] == [5.0, 4.0]
    ss = [r for r in runs if r["config"]["train.mode"] == "scheduled_sampling"]
    assert report.curve(ss, "train/eps", "step")["mean"] == [0.9, 0.8]

    fig = report.curve_figure(runs, "step")
    ax, ax2 = fig.axes  # the second (right) axis carries eps: there is a sampled mode
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert list(lines["rnn, teacher_forcing (n=3)"].get_ydata()) == [5.0, 4.0]
    assert list(lines["lstm, teacher_forcing (n=2)"].get_ydata()) == [4.0, 2.2]  # diverged seed left out
    assert list(lines["lstm, scheduled_sampling (n=2)"].get_ydata()) == [6.0, 5.5]
    assert list(lines["optimum 1.500"].get_ydata()) == [1.5, 1.5]
    (eps_line,) = ax2.get_lines()
    assert list(eps_line.get_xdata()) == [10.0, 20.0] and list(eps_line.get_ydata()) == pytest.approx([0.9, 0.8])
    # without sampled modes there is no eps axis
    assert len(report.curve_figure([r for r in runs if r["config"]["train.mode"] == "teacher_forcing"]).axes) == 1

    # one panel per cell (what "auto" picks for studies with many rows)
    fig = report.curve_figure(runs, "step", facet="model.cell")
    rnn_ax, lstm_ax, lstm_eps = fig.axes
    assert (rnn_ax.get_title(), lstm_ax.get_title()) == ("cell=rnn", "cell=lstm")
    labels = [ln.get_label() for ln in lstm_ax.get_lines()]
    assert labels == ["teacher_forcing (n=2)", "scheduled_sampling (n=2)", "optimum 1.500"]
    assert list(lstm_eps.get_lines()[0].get_ydata()) == pytest.approx([0.9, 0.8])
    with pytest.raises(RnnlabError, match="facet='model.dropout' is not a field that defines the rows"):
        report.curve_figure(runs, "step", facet="model.dropout")


def test_write_report_files(study, tmp_path):
    out = tmp_path / "out"
    res = report.write_report(study, out)
    names = sorted(str(Path(f).relative_to(out)) for f in res["files"])
    assert names == sorted(["table.md", "table.csv", "table.tex", "rows.json", "unreadable.json"] +
                           [f"plots/reber_val_ppl_vs_{x}.{e}" for x in ("step", "wall") for e in ("png", "svg")])
    assert (out / "table.md").read_text() == res["markdown"]
    assert (out / "plots" / "reber_val_ppl_vs_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "plots" / "reber_val_ppl_vs_wall.svg").read_bytes()[:2000]
    assert json.loads((out / "unreadable.json").read_text()) == []
    rows = json.loads((out / "rows.json").read_text())
    assert rows[0]["test_ppl_std"] == pytest.approx(0.5) and rows[2]["test_ppl_std"] == pytest.approx(math.sqrt(0.5))


class FakeSummary(dict):
    """W&B's HTTPSummary keeps the raw values in ``_json_dict``."""

    @property
    def _json_dict(self):
        return dict(self)


class FakeRun:
    """What wandb.apis.public.Run offers the report: config, summary, state, name, path, scan_history."""

    def __init__(self, run_dir: Path, state="finished"):
        self.config = {**json.loads((run_dir / "config.json").read_text()), "_wandb": {"cli_version": "0.31.0"}}
        s = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
        self.summary = FakeSummary({**s, "_step": 20, "_runtime": 3.0})
        self.state, self.name, self.id = state, run_dir.name, "abc" + run_dir.name
        self.path = ["ent", "proj", self.id]
        rows: dict[int, dict] = {}
        for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()):
            rows.setdefault(r["step"], {"_step": r["step"], "_runtime": 1.0, "_timestamp": 1.7e9}).update(
                {k: v for k, v in r.items() if k != "step"})
        self._rows = [rows[s] for s in sorted(rows)]

    def scan_history(self):
        return iter(self._rows)


def test_wandb_runs_convert_to_the_same_table(study):
    disk = report.load_runs(study)
    fakes = [FakeRun(Path(r["path"])) for r in disk if r["status"] != "incomplete"]
    fakes.append(FakeRun(study / "lstm" / "s3", state="crashed"))  # killed: no summary, W&B says crashed
    calls = []

    class Api:
        def runs(self, path, filters=None):
            calls.append((path, filters))
            return fakes

    runs = report.runs_from_wandb("ent/proj", {"group": "study"}, api=Api())
    assert calls == [("ent/proj", {"group": "study"})]
    one = next(r for r in runs if r["name"] == "s0" and r["config"]["model.cell"] == "rnn")
    assert one["path"] == "wandb:ent/proj/abcs0" and "_step" not in one["summary"]
    assert one["history"] == [{"step": 10, "val/ppl": 4.0, "wall_s": 1.0}, {"step": 20, "val/ppl": 3.0, "wall_s": 2.0}]
    fields, rows = report.aggregate(runs)
    dfields, drows = report.aggregate(disk)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("runs", "unfinished")} for r in rows]  # noqa: E731
    assert fields == dfields and strip(rows) == strip(drows)
    assert [(u["seed"], u["status"]) for u in rows[1]["unfinished"]] == [(2, "diverged"), (3, "failed")]

    class Down:
        def runs(self, path, filters=None):
            raise ConnectionError("no route to host\ndetails")

    with pytest.raises(RnnlabError, match=r"reading W&B runs of 'ent/proj' failed \(ConnectionError: no route to host\)"):
        report.runs_from_wandb("ent/proj", api=Down())


def test_cli(study, tmp_path):
    out = tmp_path / "rep"
    p = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={study}", f"--out={out}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith((out / "table.md").read_text())
    assert (out / "plots" / "reber_val_ppl_vs_wall.png").exists()
    p = subprocess.run([sys.executable, "-m", "experiments.report", f"--runs={tmp_path / 'nothing'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"error: runs directory {tmp_path / 'nothing'} not found; pass --runs=DIR, a folder of run directories"]
