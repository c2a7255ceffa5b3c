"""Learning curves (matplotlib, no pyplot state): the validation metric against step and wall time.

One line per table row (mean over seeds, band = min..max), the teacher-forcing probability eps of
sampled modes dashed on a second axis, the known optimum (synthetic data) as a dotted line. The
metric is ``val/ppl`` (token data) or, where no run logs it, ``val/nll`` (frame data, nats per
frame). Runs that failed or could not be read are left out.
"""
from __future__ import annotations

import math
from pathlib import Path

from .. import RnnlabError
from .grouping import KEY_COLUMNS, SAMPLED, _short_names, group_runs
from .tables import _cell_value

MAX_LINES = 6  # more rows than this (and several cells): one panel per cell
# the curve metrics in order of preference: (metrics.jsonl key, axis label, file name part)
CURVE_METRICS = (("val/ppl", "validation perplexity", "val_ppl"),
                 ("val/nll", "validation NLL (nats per frame)", "val_nll"))


def supported_formats() -> list[str]:
    """The file formats matplotlib can save here (png, svg, pdf, ...)."""
    from matplotlib.figure import Figure

    return sorted(Figure().canvas.get_supported_filetypes())


def check_formats(formats) -> tuple[str, ...]:
    """Lower-cased ``formats``; RnnlabError (one line) naming the unsupported ones and the allowed."""
    formats = tuple(str(f).strip().lower().lstrip(".") for f in formats)
    allowed = supported_formats()
    bad = [f for f in formats if f not in allowed]
    if bad:
        raise RnnlabError(f"plot format{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} not supported; "
                          f"allowed: {', '.join(allowed)}")
    return formats


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


def curve_metric(runs) -> tuple[str, str, str]:
    """(key, axis label, file part) of the first CURVE_METRICS entry some run logged (else val/ppl)."""
    for m in CURVE_METRICS:
        if any(m[0] in rec for r in runs for rec in r["history"]):
            return m
    return CURVE_METRICS[0]


def curve_figure(runs, x: str = "step", facet: str | None = "auto"):
    """A matplotlib Figure (no pyplot): the validation metric (``curve_metric``) against ``x``
    (step | wall), one line per row of the table (mean over seeds, band min..max), eps of sampled
    modes dashed on a right axis, the optimum as a dotted line when the data has one (perplexity
    only). ``facet``: a config field with one panel per value (``model.cell``), None for one panel,
    or ``auto`` (one panel per cell when there are more than MAX_LINES rows and several cells)."""
    from matplotlib.figure import Figure

    runs = [r for r in runs if r["status"] in ("finished", "incomplete")]
    key, ylabel, _ = curve_metric(runs)
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
    optima = {_finite(r["summary"].get("optimal_ppl")) for r in runs} - {None} if key == "val/ppl" else set()
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
            c = curve(members, key, x)
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
        ax.set_ylabel(ylabel)
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
    fig.suptitle(f"{', '.join(datas)}: {ylabel} (mean over seeds, band min..max)", fontsize=10)
    return fig


def plot_curves(runs, out_dir, formats=("png", "svg")) -> list[str]:
    """Write ``<data>_<metric>_vs_step.*`` and ``<data>_<metric>_vs_wall.*`` (one pair per data
    set; metric ``val_ppl`` or ``val_nll``) under ``out_dir``; -> the paths written."""
    formats = check_formats(formats)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [r for r in runs if r["config"] is not None]
    paths = []
    for data in sorted({str(r["config"].get("data.name")) for r in runs}):
        subset = [r for r in runs if str(r["config"].get("data.name")) == data]
        part = curve_metric([r for r in subset if r["status"] in ("finished", "incomplete")])[2]
        for x in ("step", "wall"):
            fig = curve_figure(subset, x)
            for fmt in formats:
                path = out_dir / f"{data}_{part}_vs_{x}.{fmt}"
                fig.savefig(path, dpi=120)
                paths.append(str(path))
    return paths
