"""The sequence-to-sequence study's tables and plot (configs/seq2seq_study.py): per task, one row per
cell x training mode with mean ± sample std over seeds of the teacher-forced test perplexity and the
free-running metrics (``seq2seq/metrics.py``), and the free-running accuracy against target length
per mode. Reads run directories through ``rnnlab.report.load_runs`` (unreadable ones are left out
and listed)."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

from .. import RnnlabError
from ..report import load_runs, readable, unreadable_runs

MODES = (("teacher_forcing", None, "teacher forcing"), ("scheduled_sampling", "inverse_sigmoid", "SS inverse sigmoid"),
         ("scheduled_sampling", "linear", "SS linear"), ("always_sampling", None, "always sampling"),
         ("professor_forcing", None, "professor forcing"), ("professor_forcing", None, "PF, adversarial always on"))
PF_UNGATED = "PF, adversarial always on"  # train.professor.adversarial_above = 0: Lamb's 0.75 gate removed
CELLS = ("rnn", "gru", "lstm")
# (summary key, column title): valid = train lengths, test = longer ones on the synthetic tasks
COLUMNS = (("test_ppl", "test ppl (TF)"), ("val_seq_acc", "valid exact"), ("val_beam_seq_acc", "valid exact (beam)"),
           ("val_token_acc", "valid token acc"), ("test_seq_acc", "test exact"), ("test_token_acc", "test token acc"),
           ("test_edit", "test edit dist"))
TEXT_COLUMNS = (("test_ppl", "test ppl (TF)"), ("val_bleu", "valid BLEU"), ("test_bleu", "test BLEU"),
                ("test_beam_bleu", "test BLEU (beam)"), ("test_seq_acc", "test exact"), ("test_token_acc", "test token acc"),
                ("test_edit", "test edit dist"))


def mode_label(mode: str, kind, adversarial_above=None) -> str:
    if mode == "professor_forcing" and adversarial_above == 0.0:
        return PF_UNGATED
    for m, k, label in MODES:
        if m == mode and (k is None or k == kind):
            return label
    return mode if mode != "scheduled_sampling" else f"SS {kind}"


def _fmt(values, pct: bool) -> str:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return "-"
    scale, digits = (100.0, 1) if pct else (1.0, 3)
    mean = scale * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {scale * statistics.stdev(values):.{digits}f}"


def _load(runs_dirs) -> list[dict]:
    return [r for d in runs_dirs for r in load_runs(d)]


def study_runs(*runs_dirs, records: bool = False) -> dict:
    """{task: {(cell, mode label): [summary, ...]}} of the finished runs under ``runs_dirs`` (with
    ``records``: the run records of ``report.load_runs``, metrics.jsonl's ``history`` included)."""
    out: dict = {}
    for r in readable(_load(runs_dirs)):
        s, c = r["summary"], r["config"]
        if r["status"] != "finished" or "test_seq_acc" not in s:
            continue
        label = mode_label(c["train.mode"], c.get("train.schedule.kind"), c.get("train.professor.adversarial_above"))
        out.setdefault(c["data.name"], {}).setdefault((c["model.cell"], label), []).append(r if records else s)
    if not out:
        raise RnnlabError(f"no finished seq2seq run (summary with test_seq_acc) under {', '.join(map(str, runs_dirs))}; "
                          f"run the study first")
    return out


def study_tables(*runs_dirs) -> str:
    """Markdown: one table per task (rows cell x mode; accuracies in %), then the unreadable runs."""
    order = {label: i for i, (_, _, label) in enumerate(MODES)}
    parts = []
    for task, groups in sorted(study_runs(*runs_dirs).items()):
        text = any("test_bleu" in s for g in groups.values() for s in g)
        cols = TEXT_COLUMNS if text else COLUMNS
        lines = [f"**{task}**", "", "| cell | mode | " + " | ".join(t for _, t in cols) + " | seeds |",
                 "|---|---|" + "---|" * len(cols) + "---|"]
        keys = sorted(groups, key=lambda k: (CELLS.index(k[0]) if k[0] in CELLS else 9, order.get(k[1], 9), k))
        for cell, label in keys:
            runs = groups[(cell, label)]
            vals = [_fmt([s.get(k) for s in runs], pct=not k.endswith(("ppl", "bleu", "edit"))) for k, _ in cols]
            lines.append(f"| {cell} | {label} | " + " | ".join(vals) + f" | {len(runs)} |")
        parts.append("\n".join(lines))
    bad = unreadable_runs(_load(runs_dirs))
    if bad:
        parts.append("Unreadable runs (left out): " + "; ".join(f"{u['path']} ({u['reason']})" for u in bad))
    return "\n\n".join(parts) + "\n"


def professor_table(*runs_dirs) -> str:
    """Markdown: the professor-forcing runs' discriminator, per task and cell (mean ± std over seeds):
    its accuracy over the last quarter of training, and the fraction of steps on which it trained
    (accuracy < train.professor.train_below) and on which the adversarial term reached the model
    (accuracy > adversarial_above), from metrics.jsonl."""
    lines = ["| task | cell | disc accuracy (last quarter) | disc trained (% steps) | adversarial on (% steps) | seeds |",
             "|---|---|---|---|---|---|"]
    lines[0] = lines[0].replace("| cell |", "| cell | variant |")
    lines[1] += "---|"
    for task, groups in sorted(study_runs(*runs_dirs, records=True).items()):
        for (cell, label), recs in sorted(groups.items(), key=lambda kv: (CELLS.index(kv[0][0]) if kv[0][0] in CELLS
                                                                          else 9, kv[0][1])):
            if not label.startswith(("professor forcing", "PF")):
                continue
            acc, trained, on = [], [], []
            for r in recs:
                h = [x for x in r["history"] if "train/disc_acc" in x]
                if h:
                    acc.append(statistics.fmean(x["train/disc_acc"] for x in h[len(h) * 3 // 4:]))
                    trained.append(statistics.fmean(x["train/disc_trained"] for x in h))
                    on.append(statistics.fmean(x["train/adv_on"] for x in h))
            lines.append(f"| {task} | {cell} | {label} | {_fmt(acc, True)} | {_fmt(trained, True)} | {_fmt(on, True)} | {len(acc)} |")
    return "\n".join(lines) + "\n"


def accuracy_by_length(runs: list[dict], metric: str = "seq_acc") -> dict:
    """{target length: mean over the runs} of the greedy ``metric`` per length, valid and test
    buckets together (valid: the train lengths, test: the longer ones)."""
    per: dict = {}
    for s in runs:
        for split in ("val", "test"):
            for n, v in (s.get(f"{split}_{metric}_by_len") or {}).items():
                per.setdefault(int(n), []).append(v)
    return {n: statistics.fmean(v) for n, v in sorted(per.items())}


def plot_accuracy_by_length(runs_dirs, out_file, tasks=None, cells=None) -> str:
    """A figure: one column per task, rows exact match and token accuracy (greedy) against the
    target length, one line per mode (mean over the ``cells`` (default all) and seeds); the dotted
    line marks the longest train source. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = study_runs(*([runs_dirs] if isinstance(runs_dirs, (str, Path)) else runs_dirs))
    tasks = [t for t in (tasks or sorted(data)) if t in data]
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 5.6), squeeze=False, sharey="row")
    for j, task in enumerate(tasks):
        for i, metric in enumerate(("seq_acc", "token_acc")):
            ax = axes[i][j]
            for _, _, label in MODES:
                runs = [s for (cell, lab), g in data[task].items() if lab == label and (not cells or cell in cells)
                        for s in g]
                if runs:
                    curve = accuracy_by_length(runs, metric)
                    ax.plot(list(curve), list(curve.values()), marker=".", label=label)
            longest = max((s.get("max_len") or 0 for g in data[task].values() for s in g), default=0)
            if longest:
                ax.axvline(longest + 0.5, color="grey", linestyle=":", linewidth=1)
            ax.set_title((task + (f" ({', '.join(cells)})" if cells else "")) if i == 0 else "")
            ax.set_xlabel("target length" if i == 1 else "")
            ax.set_ylabel(("exact match" if metric == "seq_acc" else "token accuracy") if j == 0 else "")
            ax.set_ylim(-0.02, 1.02)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return str(out_file)
