"""The state-tracking study's table (configs/state_tracking.py): one row per task x cell, mean ± std
over seeds of the accuracy on valid (train lengths) and on test, overall and in length buckets, and
the test sequence accuracy; the output-to-hidden network gets a second row, teacher-forced (the
gold previous labels fed), beside its free-running one (what it does at test time).

A bucket's accuracy is target-weighted from the summary's ``test_acc_by_length`` and
``test_seqs_by_length``: sum_L acc_L * L * n_L / sum_L L * n_L over the lengths L in the bucket.

    python -c "from rnnlab.report.state_tracking import state_tracking_table; print(state_tracking_table('runs/state_tracking'))"
"""
from __future__ import annotations

from .. import RnnlabError
from .modes import _mean_std
from .runs_io import load_runs, readable, unreadable_runs

CELL_ORDER = ("rnn", "gru", "lstm", "mingru", "minlstm", "output_to_hidden")
BUCKETS = ((21, 40), (41, 60), (61, 80), (81, 100))


def bucket_accuracy(acc_by_length: dict, seqs_by_length: dict, lo: int, hi: int):
    """Target-weighted accuracy over the lengths lo..hi (None when none was tested)."""
    num = den = 0.0
    for k, acc in acc_by_length.items():
        L = int(k)
        if lo <= L <= hi:
            w = L * seqs_by_length.get(k, 0)
            num, den = num + acc * w, den + w
    return num / den if den else None


def _row(rs, suffix: str, buckets) -> list[str]:
    """The cells of one table row from the summaries rs; suffix '' (as run) or '_tf' (teacher-forced)."""
    s = lambda r, k: r.get(k + suffix)  # noqa: E731
    cells = [_mean_std([s(r, "val_acc") for r in rs]), _mean_std([s(r, "test_acc") for r in rs])]
    for lo, hi in buckets:
        cells.append(_mean_std([bucket_accuracy(s(r, "test_acc_by_length") or {}, r.get("test_seqs_by_length") or {},
                                                lo, hi) for r in rs]))
    cells.append(_mean_std([s(r, "test_seq_acc") for r in rs]))
    return cells


def state_tracking_table(runs_dir, buckets=BUCKETS) -> str:
    """Markdown table of the finished transduction runs under ``runs_dir`` (see the module docstring),
    then the unreadable runs, if any."""
    runs = load_runs(runs_dir)
    groups: dict = {}
    for r in readable(runs):
        sm = r["summary"]
        if r["status"] == "finished" and "test_acc" in sm:
            groups.setdefault((r["config"]["data.name"], r["config"]["model.cell"]), []).append(sm)
    if not groups:
        raise RnnlabError(f"no finished transduction run (summary with test_acc) under {runs_dir}; run the study "
                          f"first: python -m experiments.sweep --config=configs/state_tracking.py --workdir={runs_dir}")
    head = ["task", "cell", "fed o_{t-1}", "seeds", "params", "valid acc (1-20)", "test acc (21-100)",
            *[f"test {lo}-{hi}" for lo, hi in buckets], "test seq acc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = lambda k: (k[0], CELL_ORDER.index(k[1]) if k[1] in CELL_ORDER else len(CELL_ORDER), k[1])  # noqa: E731
    for task, cell in sorted(groups, key=order):
        rs = groups[(task, cell)]
        params = f"{rs[0].get('num_params', 0):,}"
        tf = "test_acc_tf" in rs[0]
        lines.append("| " + " | ".join([task, cell, "own (free running)" if tf else "-", str(len(rs)), params,
                                        *_row(rs, "", buckets)]) + " |")
        if tf:
            lines.append("| " + " | ".join([task, cell, "gold (teacher-forced)", str(len(rs)), params,
                                            *_row(rs, "_tf", buckets)]) + " |")
    bad = unreadable_runs(runs)
    tail = ["", f"unreadable runs ({len(bad)}; left out of every mean):",
            *[f"- {b['path']}: {b['reason']}" for b in bad]] if bad else []
    return "\n".join(lines + tail)
