"""Runs -> comparison tables and learning curves (the end of the study: cells -> ... -> report).

For the sweep runner: ``build_table(runs_dir) -> (rows, markdown)`` is the call that prints the
table at the end of a sweep (``print(build_table(workdir)[1])``); ``write_report(runs, out_dir)``
also writes table.md / table.csv / table.tex and the plots.

A run is a directory with ``config.json`` (found recursively under the runs directory), its
``summary.json`` (written when it finished, or with ``status`` failed / diverged) and
``metrics.jsonl``; or a W&B run read with the public API (``runs_from_wandb``), converted to the
same record (``run_from_wandb``). Runs are grouped into rows by every config field that differs
between them, except the seed (and fields that cannot change results: output, logging,
checkpointing); data, cell, mode, hidden size and layers are always shown. Each row gives the mean
+- sample standard deviation (n - 1) over the finished seeds, and notes the runs that did not
finish.

Plots (matplotlib, no pyplot state): validation perplexity against step and against wall time, one
line per row (mean over seeds, band = min..max), the teacher-forcing probability eps of sampled
modes on a second axis, the known optimum (synthetic data) as a dotted line.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from . import RnnlabError
from .config import TRAIN_MODES, base_config
from .tracking import read_jsonl, write_json

# config fields that never define a row: the seed (averaged over) and fields that cannot change
# the results (where output goes, how it is shown, how often it is logged or checkpointed).
IGNORED_FIELDS = {"train.seed", "train.progress", "train.log_every", "data.dir", "checkpoint.every_steps",
                  "checkpoint.keep"}
IGNORED_PREFIXES = ("wandb.",)
# always shown, in this order: (config field, column title)
KEY_COLUMNS = (("data.name", "data"), ("model.cell", "cell"), ("train.mode", "mode"),
               ("model.hidden_size", "H"), ("model.num_layers", "layers"))
CELL_ORDER = ("rnn", "rnn_relu", "gru", "gru_cho", "lstm")
# (summary key, column title, format kind); a column appears when some row has the key
METRICS = (("best_val_ppl", "best valid ppl", "ppl"), ("test_ppl", "test ppl", "ppl"),
           ("test_bpc", "test bpc", "bpc"), ("optimal_ppl", "optimal ppl", "ppl"),
           ("nll_oracle", "NLL-oracle", "nll"), ("nll_test", "NLL-test", "nll"),
           ("tokens_per_sec", "tokens/s", "int"), ("wall_s", "time (s)", "time"))
SAMPLED = lambda mode: mode != "teacher_forcing"  # noqa: E731  modes whose eps is not constant 1


# ----------------------------------------------------------------------------- collecting runs
def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"cell": "gru"}} -> {"model.cell": "gru"}; lists become tuples (hashable)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = tuple(v) if isinstance(v, list) else v
    return out


def _defaults() -> dict:
    return flatten(json.loads(base_config().to_json()))


# fields a training mode does not use: None for those runs, so they neither split rows nor show
# (teacher forcing has no schedule and no feedback; always sampling has eps = 0, no schedule)
_FEEDBACK_FIELDS = ("train.feedback", "train.feedback_temperature", "train.coin")
UNUSED_BY_MODE = {"teacher_forcing": ("train.schedule.",) + _FEEDBACK_FIELDS, "always_sampling": ("train.schedule.",)}


def _drop_unused(flat: dict) -> dict:
    unused = UNUSED_BY_MODE.get(flat.get("train.mode"), ())
    return {k: (None if k.startswith(unused) else v) for k, v in flat.items()}


def make_run(config: dict, summary: dict | None, history: list[dict], *, path: str, name: str = "") -> dict:
    """The record every reader returns: ``config`` (flat, defaults of base_config() filled in for
    fields a run predates), ``summary`` ({} when there is none), ``history`` (metrics.jsonl
    records), ``status`` (finished | failed | diverged | ... | incomplete), ``error``, ``path``, ``name``."""
    summary = dict(summary or {})
    flat = _drop_unused({**_defaults(), **flatten(config)})
    status = summary.get("status", "incomplete")
    error = summary.get("error") or summary.get("message") or ""
    return {"config": flat, "summary": summary, "history": list(history), "status": status,
            "error": str(error), "path": path, "name": name or Path(path).name}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def load_runs(runs_dir) -> list[dict]:
    """Every run directory under ``runs_dir`` (itself included): a folder holding config.json
    (folders inside a run's wandb/ or checkpoints/ are skipped)."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RnnlabError(f"runs directory {root} not found; pass --runs=DIR, a folder of run directories")
    runs = []
    for cfg_path in sorted(root.rglob("config.json")):
        rel = cfg_path.relative_to(root).parts[:-1]
        if any(p in ("wandb", "checkpoints") or p.startswith(".") for p in rel):
            continue
        config = _read_json(cfg_path)
        if not isinstance(config, dict) or "model" not in config:
            continue  # some other tool's config.json
        d = cfg_path.parent
        summary = _read_json(d / "summary.json") if (d / "summary.json").exists() else None
        name = "/".join(rel) or root.name
        runs.append(make_run(config, summary, read_jsonl(d / "metrics.jsonl"), path=str(d), name=name))
    if not runs:
        raise RnnlabError(f"no run directories (config.json) under {root}; train or sweep into it first")
    return runs


# ----------------------------------------------------------------------------- W&B as a source
def _plain(obj):
    """W&B API objects (SummarySubDict, ...) -> plain JSON values."""
    try:
        return json.loads(json.dumps(obj, default=lambda o: dict(o) if hasattr(o, "keys") else str(o)))
    except (TypeError, ValueError):
        return obj


# W&B run states -> our status when a run has no summary status (it never finished)
WANDB_STATES = {"finished": "finished", "running": "incomplete", "pending": "incomplete",
                "crashed": "failed", "failed": "failed", "killed": "failed"}


def run_from_wandb(run) -> dict:
    """One ``wandb.apis.public.Run`` (or anything with ``config``, ``summary``, ``state``, ``name``,
    ``path`` and ``scan_history()``) -> the record of ``make_run``; history rows become
    metrics.jsonl records (``_step`` -> ``step``, W&B's own ``_`` keys dropped)."""
    config = {k: v for k, v in _plain(dict(run.config)).items() if not k.startswith("_")}
    raw = getattr(run.summary, "_json_dict", None)
    summary = _plain(dict(raw) if raw is not None else {k: run.summary[k] for k in run.summary.keys()})
    summary = {k: v for k, v in summary.items() if not k.startswith("_")}
    if "status" not in summary:
        summary["status"] = WANDB_STATES.get(getattr(run, "state", ""), "incomplete")
        if summary["status"] == "finished":
            summary["status"] = "incomplete"  # finished without our summary: not a completed run
    history = []
    for row in run.scan_history():
        if "_step" not in row:
            continue
        rec = {"step": int(row["_step"])}
        rec.update({k: v for k, v in row.items() if not k.startswith("_") and v is not None})
        if len(rec) > 1:
            history.append(rec)
    path = getattr(run, "path", None)
    path = "/".join(path) if isinstance(path, (list, tuple)) else str(path or run.id)
    return make_run(config, summary, history, path=f"wandb:{path}", name=run.name)


def runs_from_wandb(path: str, filters: dict | None = None, api=None) -> list[dict]:
    """Runs of a W&B project (``entity/project``; needs network and an API key), optionally
    filtered (W&B's MongoDB-style filters, e.g. ``{"group": "quickstart"}``)."""
    if api is None:
        try:
            import wandb

            api = wandb.Api(timeout=60)
        except Exception as e:
            raise RnnlabError(f"cannot reach W&B for {path!r} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              f"log in (wandb login) or read the run directories with --runs=DIR") from None
    try:
        runs = [run_from_wandb(r) for r in api.runs(path, filters=filters or {})]
    except RnnlabError:
        raise
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise RnnlabError(f"reading W&B runs of {path!r} failed ({type(e).__name__}: {first}); "
                          f"check entity/project and your login, or use --runs=DIR") from None
    if not runs:
        raise RnnlabError(f"no runs in W&B project {path!r}" + (f" matching {filters}" if filters else ""))
    return runs


# ----------------------------------------------------------------------------- grouping
def _ignored(field: str) -> bool:
    return field in IGNORED_FIELDS or field.startswith(IGNORED_PREFIXES)


def varying_fields(runs) -> list[str]:
    """Config fields (flat names) whose value differs between runs, seed and neutral fields aside."""
    fields = sorted({k for r in runs for k in r["config"]})
    out = []
    for f in fields:
        if _ignored(f) or f in dict(KEY_COLUMNS):
            continue
        if len({repr(r["config"].get(f)) for r in runs} - {"None"}) > 1:  # None: unused by that run's mode
            out.append(f)
    return out


def _short_names(fields) -> dict:
    """model.dropout -> dropout, train.schedule.kind -> schedule.kind (the section dropped when the
    rest is unique)."""
    rest = [f.split(".", 1)[-1] for f in fields]
    return {f: (r if rest.count(r) == 1 else f) for f, r in zip(fields, rest)}


def _sort_key(value, field):
    if field == "model.cell" and value in CELL_ORDER:
        return (0, CELL_ORDER.index(value), "")
    if field == "train.mode" and value in TRAIN_MODES:
        return (0, TRAIN_MODES.index(value), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, repr(value))


def _stats(values) -> tuple[float, float, int]:
    """(mean, sample std (n - 1; nan for one value), n) of the finite values."""
    vals = []
    for v in values:
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            vals.append(v)
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def group_runs(runs) -> tuple[list[str], list[tuple[tuple, list[dict]]]]:
    """-> (key fields, [(key values, runs)]) with rows sorted by data, mode, cell, then the rest."""
    fields = [f for f, _ in KEY_COLUMNS] + varying_fields(runs)
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault(tuple(r["config"].get(f) for f in fields), []).append(r)
    order = [fields.index(f) for f in ("data.name", "train.mode", "model.cell")]
    order += [i for i in range(len(fields)) if i not in order]

    def key(item):
        vals = item[0]
        return tuple(_sort_key(vals[i], fields[i]) for i in order)

    return fields, sorted(groups.items(), key=key)


def aggregate(runs) -> tuple[list[str], list[dict]]:
    """-> (key fields, rows). A row: the key fields' values, ``seeds`` (finished), ``n``,
    ``num_params``, ``<metric>_mean`` / ``<metric>_std`` for each metric in METRICS that its runs
    report, ``unfinished`` ([{"seed", "status", "error", "path"}]) and ``runs`` (paths)."""
    fields, groups = group_runs(runs)
    rows = []
    for vals, members in groups:
        done = [r for r in members if r["status"] == "finished"]
        row = dict(zip(fields, vals))
        row["seeds"] = sorted(r["config"].get("train.seed") for r in done)
        row["n"] = len(done)
        params = {r["summary"].get("num_params") for r in done} - {None}
        row["num_params"] = params.pop() if len(params) == 1 else (_stats(params)[0] if params else None)
        for key, _, _ in METRICS:
            have = [r["summary"][key] for r in done if key in r["summary"]]
            if have:
                row[f"{key}_mean"], row[f"{key}_std"], _ = _stats(have)
        row["unfinished"] = [{"seed": r["config"].get("train.seed"), "status": r["status"], "error": r["error"],
                              "path": r["path"]} for r in members if r["status"] != "finished"]
        row["runs"] = [r["path"] for r in members]
        rows.append(row)
    return fields, rows


# ----------------------------------------------------------------------------- formatting
def _fmt(x, kind: str, ref=None) -> str:
    """Format ``x``; ``ref`` (the mean, for a std) sets the decimals of perplexities."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if kind == "int":
        return f"{x:,.0f}"
    if kind == "time":
        return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
    if kind in ("bpc", "nll"):
        return f"{x:.3f}"
    r = abs(x if ref is None else ref)
    return f"{x:.3f}" if r < 10 else f"{x:.2f}" if r < 1000 else f"{x:,.1f}"


def _pm(row, key, kind, pm=" ± ") -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None:
        return ""
    if kind in ("int", "time") or key == "optimal_ppl" or std is None or not math.isfinite(std):
        return _fmt(mean, kind)
    return f"{_fmt(mean, kind)}{pm}{_fmt(std, kind, ref=mean)}"


def _cell_value(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ")"
    return str(v)


def _unfinished_text(row) -> str:
    if not row["unfinished"]:
        return ""
    by: dict[str, list] = {}
    for u in row["unfinished"]:
        by.setdefault(u["status"], []).append(str(u["seed"]))
    return "; ".join(f"{len(s)} {st} (seed {', '.join(s)})" for st, s in by.items())


def table_columns(fields, rows) -> list[tuple[str, object]]:
    """[(title, row -> text)] of the columns this table shows."""
    short = _short_names(fields[len(KEY_COLUMNS):])
    titles = dict(KEY_COLUMNS) | short
    cols = [(titles[f], (lambda r, f=f: _cell_value(r[f]))) for f in fields]
    cols.append(("params", lambda r: _fmt(r["num_params"], "int")))
    for key, title, kind in METRICS:
        if any(f"{key}_mean" in r for r in rows):
            cols.append((title, lambda r, key=key, kind=kind: _pm(r, key, kind)))
    cols.append(("seeds", lambda r: str(r["n"])))
    if any(r["unfinished"] for r in rows):
        cols.append(("not finished", _unfinished_text))
    return cols


def to_markdown(fields, rows) -> str:
    cols = table_columns(fields, rows)
    lines = ["| " + " | ".join(t for t, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fn(r) for _, fn in cols) + " |" for r in rows]
    notes = ["", "mean ± sample std (n - 1) over the finished seeds; params = trainable parameters."]
    for r in rows:
        for u in r["unfinished"]:
            err = f": {u['error']}" if u["error"] else ""
            notes.append(f"- {u['status']}: {u['path']}{err}")
    return "\n".join(lines + notes) + "\n"


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s


def to_latex(fields, rows) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    cols = table_columns(fields, rows)
    esc = lambda s: _latex_escape(s).replace(" ± ", r" $\pm$ ")  # noqa: E731
    out = [r"\begin{tabular}{" + "l" * len(fields) + "r" * (len(cols) - len(fields)) + "}", r"\toprule",
           " & ".join(_latex_escape(t) for t, _ in cols) + r" \\", r"\midrule"]
    out += [" & ".join(esc(fn(r)) for _, fn in cols) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_csv(fields, rows) -> str:
    """Raw numbers: the key fields, n, seeds, num_params, <metric>_mean / _std, unfinished."""
    metric_cols = [f"{k}_{s}" for k, _, _ in METRICS if any(f"{k}_mean" in r for r in rows) for s in ("mean", "std")]
    header = list(fields) + ["n", "seeds", "num_params"] + metric_cols + ["unfinished"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_cell_value(r[f]) for f in fields] + [r["n"], " ".join(map(str, r["seeds"])), r["num_params"]]
                   + [("" if r.get(c) is None or (isinstance(r.get(c), float) and math.isnan(r[c])) else repr(r[c]))
                      for c in metric_cols] + [_unfinished_text(r)])
    return buf.getvalue()


def build_table(runs) -> tuple[list[dict], str]:
    """``runs``: a runs directory (or a list of run records) -> (rows, markdown table)."""
    if not isinstance(runs, list):
        runs = load_runs(runs)
    fields, rows = aggregate(runs)
    return rows, to_markdown(fields, rows)


# ----------------------------------------------------------------------------- learning curves
def _finite(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def curve(members, key: str = "val/ppl", x: str = "step") -> dict | None:
    """Mean and min..max over runs of metric ``key`` at each logged step. ``x``: ``step`` or
    ``wall`` (x = mean over runs of the records' ``wall_s``). -> {"x", "mean", "lo", "hi", "n"}
    (lists, by step), or None when no run logged ``key``."""
    by_step: dict[int, list] = {}
    for r in members:
        seen = {}
        for rec in r["history"]:
            v = _finite(rec.get(key))
            if v is None:
                continue
            w = _finite(rec.get("wall_s"))
            if x == "wall" and w is None:
                continue
            seen[int(rec["step"])] = (v, w)  # a step logged twice (resume): the last record
        for s, vw in seen.items():
            by_step.setdefault(s, []).append(vw)
    if not by_step:
        return None
    steps = sorted(by_step)
    out = {"x": [], "mean": [], "lo": [], "hi": [], "n": []}
    for s in steps:
        vals = [v for v, _ in by_step[s]]
        out["x"].append(float(s) if x == "step" else sum(w for _, w in by_step[s]) / len(vals))
        out["mean"].append(sum(vals) / len(vals))
        out["lo"].append(min(vals))
        out["hi"].append(max(vals))
        out["n"].append(len(vals))
    return out


def _label(vals: dict, show: list[str], short: dict) -> str:
    parts = [str(vals["model.cell"]), str(vals["train.mode"])]
    parts += [f"{short.get(f, f)}={_cell_value(vals[f])}" for f in show]
    return ", ".join(parts)


MAX_LINES = 6  # more rows than this (and several cells): one panel per cell


def curve_figure(runs, x: str = "step", facet: str | None = "auto"):
    """A matplotlib Figure (no pyplot): validation perplexity against ``x`` (step | wall), one line
    per row of the table (mean over seeds, band min..max), eps of sampled modes dashed on a right
    axis, the optimum as a dotted line when the data has one. Runs that failed are left out.
    ``facet``: a config field with one panel per value (``model.cell``), None for one panel, or
    ``auto`` (one panel per cell when there are more than MAX_LINES rows and several cells)."""
    from matplotlib.figure import Figure

    runs = [r for r in runs if r["status"] in ("finished", "incomplete")]
    fields, groups = group_runs(runs) if runs else ([f for f, _ in KEY_COLUMNS], [])
    cells = list(dict.fromkeys(g[0][fields.index("model.cell")] for g in groups))
    if facet == "auto":
        facet = "model.cell" if len(groups) > MAX_LINES and len(cells) > 1 else None
    if facet is None:
        panels = [(None, groups)]
    else:
        fi = fields.index(facet) if facet in fields else None
        if fi is None:
            raise RnnlabError(f"facet={facet!r} is not a field that defines the rows; allowed: {', '.join(fields)}")
        values = list(dict.fromkeys(g[0][fi] for g in groups))
        panels = [(v, [g for g in groups if g[0][fi] == v]) for v in values]
    hidden = {"data.name", "model.cell", "train.mode"} - ({"train.mode"} if facet == "train.mode" else set())
    show = [f for i, f in enumerate(fields) if f not in hidden and f != facet and len({g[0][i] for g in groups}) > 1]
    short = {"model.hidden_size": "H", "model.num_layers": "layers"} | _short_names(fields[len(KEY_COLUMNS):])
    optima = {_finite(r["summary"].get("optimal_ppl")) for r in runs} - {None}
    opt = optima.pop() if len(optima) == 1 else None
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(7.5 if ncols == 1 else 5.2 * ncols, 4.6 if nrows == 1 else 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(panels):]:
        fig.delaxes(ax)
    colors: dict[str, str] = {}
    lo_all, hi_all = math.inf, 0.0
    for ax, (value, members_of_panel) in zip(axes, panels):
        ax2 = None
        for vals, members in members_of_panel:
            c = curve(members, "val/ppl", x)
            if c is None:
                continue
            vals = dict(zip(fields, vals))
            parts = [str(vals[f]) for f in ("model.cell", "train.mode") if f != facet]
            label = ", ".join(parts + [f"{short.get(f, f)}={_cell_value(vals[f])}" for f in show])
            color = colors.setdefault(label, f"C{len(colors) % 10}")
            n = max(c["n"])
            ax.plot(c["x"], c["mean"], color=color, marker="o", ms=3, label=f"{label} (n={n})")
            if n > 1:
                ax.fill_between(c["x"], c["lo"], c["hi"], color=color, alpha=0.2, lw=0)
            lo_all, hi_all = min(lo_all, min(c["lo"])), max(hi_all, max(c["hi"]))
            if SAMPLED(vals["train.mode"]):
                e = curve(members, "train/eps", x)
                if e is not None:
                    if ax2 is None:
                        ax2 = ax.twinx()
                        ax2.set_ylim(0.0, 1.05)
                        ax2.set_ylabel("eps: P(gold token fed), dashed")
                    ax2.plot(e["x"], e["mean"], color=color, ls="--", lw=1.2, alpha=0.8)
        if opt is not None:
            ax.axhline(opt, color="k", ls=":", lw=1, label=f"optimum {opt:.3f}")
        ax.set_xlabel("step" if x == "step" else "wall time since the run started (s), incl. data and compile")
        ax.set_ylabel("validation perplexity")
        ax.grid(alpha=0.3)
        if facet is not None:
            ax.set_title(f"{short.get(facet, facet.split('.')[-1])}={_cell_value(value)}", fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7 if facet else 8, loc="upper right")
    if opt is not None:
        lo_all = min(lo_all, opt)
        if math.isfinite(hi_all) and hi_all > opt:
            axes[0].set_ylim(opt - 0.03 * (hi_all - opt), None)  # keep the optimum in view (y is shared)
    if math.isfinite(lo_all) and lo_all > 0 and hi_all / lo_all > 5:
        axes[0].set_yscale("log")
    datas = sorted({str(g[0][0]) for g in groups})
    fig.suptitle(f"{', '.join(datas)}: validation perplexity (mean over seeds, band min..max)", fontsize=10)
    return fig


def plot_curves(runs, out_dir, formats=("png", "svg")) -> list[str]:
    """Write ``<data>_val_ppl_vs_step.*`` and ``<data>_val_ppl_vs_wall.*`` (one pair per data set)
    under ``out_dir``; -> the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for data in sorted({str(r["config"].get("data.name")) for r in runs}):
        subset = [r for r in runs if str(r["config"].get("data.name")) == data]
        for x in ("step", "wall"):
            fig = curve_figure(subset, x)
            for fmt in formats:
                path = out_dir / f"{data}_val_ppl_vs_{x}.{fmt}"
                fig.savefig(path, dpi=120)
                paths.append(str(path))
    return paths


def write_report(runs, out_dir, formats=("png", "svg")) -> dict:
    """Table (table.md, table.csv, table.tex, rows.json) and plots (plots/) under ``out_dir``.
    ``runs``: a runs directory or run records. -> {"markdown": text, "files": [paths]}."""
    if not isinstance(runs, list):
        runs = load_runs(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields, rows = aggregate(runs)
    md = to_markdown(fields, rows)
    files = {"table.md": md, "table.csv": to_csv(fields, rows), "table.tex": to_latex(fields, rows)}
    for name, text in files.items():
        (out_dir / name).write_text(text)
    clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731  strict JSON
    write_json(out_dir / "rows.json", [{k: clean(v) for k, v in r.items()} for r in rows])
    paths = [str(out_dir / n) for n in (*files, "rows.json")]
    paths += plot_curves(runs, out_dir / "plots", formats)
    return {"markdown": md, "rows": rows, "files": paths}
