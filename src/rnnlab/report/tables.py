"""Table rows -> Markdown, LaTeX (booktabs) and CSV, and ``build_table`` (what a sweep prints).

A table is a list of columns ``[(title, row -> text)]`` over rows (``grouping.aggregate`` or
``selection.select``); the first ``n_left`` columns are left-aligned labels, the rest numbers.
Runs that could not be read are listed after the table (``unreadable_lines``), never in a mean.
"""
from __future__ import annotations

import csv
import io
import math

from .grouping import KEY_COLUMNS, METRICS, _short_names, aggregate, is_unreadable
from .runs_io import load_runs, unreadable_runs

MEAN_NOTE = "mean ± sample std (n - 1) over the finished seeds"
NLL_NOTE = " NLL in nats per frame (one time step of K keys)."


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


def metric_columns(rows, metrics=METRICS) -> list[tuple[str, object]]:
    """[(title, row -> "mean ± std")] of the metrics some row has."""
    return [(title, lambda r, key=key, kind=kind: _pm(r, key, kind))
            for key, title, kind in metrics if any(f"{key}_mean" in r for r in rows)]


def table_columns(fields, rows) -> list[tuple[str, object]]:
    """[(title, row -> text)] of the columns this table shows."""
    short = _short_names(fields[len(KEY_COLUMNS):])
    titles = dict(KEY_COLUMNS) | short
    cols = [(titles[f], (lambda r, f=f: _cell_value(r[f]))) for f in fields]
    cols.append(("params", lambda r: _fmt(r["num_params"], "int")))
    cols += metric_columns(rows)
    cols.append(("seeds", lambda r: str(r["n"])))
    if any(r["unfinished"] for r in rows):
        cols.append(("not finished", _unfinished_text))
    return cols


def markdown_lines(cols, rows) -> list[str]:
    if not rows:
        return ["(no readable runs)"]
    lines = ["| " + " | ".join(t for t, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    return lines + ["| " + " | ".join(fn(r) for _, fn in cols) + " |" for r in rows]


def unfinished_lines(rows) -> list[str]:
    """``- <status>: <path>: <error>`` for each run that did not finish (unreadable ones aside)."""
    out = []
    for r in rows:
        for u in r["unfinished"]:
            if not is_unreadable(u):
                out.append(f"- {u['status']}: {u['path']}" + (f": {u['error']}" if u["error"] else ""))
    return out


def unreadable_lines(unreadable) -> list[str]:
    """The "unreadable runs" section: ``- <path>/<file>: <reason>`` each (empty when there are none)."""
    if not unreadable:
        return []
    return ["", f"unreadable runs ({len(unreadable)}; left out of every mean):"] + [
        f"- {u['path']}/{u['reason']}" for u in unreadable]


def nll_note(rows) -> str:
    """The unit of the NLL columns, when the table has any."""
    return NLL_NOTE if any("test_nll_mean" in r or "best_val_nll_mean" in r for r in rows) else ""


def to_markdown(fields, rows, unreadable=()) -> str:
    """The table, a note, one line per unfinished run, and the unreadable runs (``unreadable_runs``)."""
    note = f"{MEAN_NOTE}; params = trainable parameters.{nll_note(rows)}"
    lines = markdown_lines(table_columns(fields, rows), rows) + ["", note] + unfinished_lines(rows)
    return "\n".join(lines + unreadable_lines(unreadable)) + "\n"


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s


def latex_table(cols, n_left: int, rows) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); the first ``n_left`` columns left-aligned."""
    esc = lambda s: _latex_escape(s).replace(" ± ", r" $\pm$ ")  # noqa: E731
    out = [r"\begin{tabular}{" + "l" * n_left + "r" * (len(cols) - n_left) + "}", r"\toprule",
           " & ".join(_latex_escape(t) for t, _ in cols) + r" \\", r"\midrule"]
    out += [" & ".join(esc(fn(r)) for _, fn in cols) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def to_latex(fields, rows) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    return latex_table(table_columns(fields, rows), len(fields), rows)


def raw(v) -> str:
    """A number for CSV: repr (all digits), '' for None / nan."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(v)


def csv_text(header, lines) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(lines)
    return buf.getvalue()


def stat_columns(rows, metrics=METRICS) -> list[str]:
    """``<metric>_mean``, ``<metric>_std`` of the metrics some row has (CSV columns)."""
    return [f"{k}_{s}" for k, _, _ in metrics if any(f"{k}_mean" in r for r in rows) for s in ("mean", "std")]


def to_csv(fields, rows) -> str:
    """Raw numbers: the key fields, n, seeds, num_params, <metric>_mean / _std, unfinished."""
    metric_cols = stat_columns(rows)
    header = list(fields) + ["n", "seeds", "num_params"] + metric_cols + ["unfinished"]
    return csv_text(header, [[_cell_value(r[f]) for f in fields] + [r["n"], " ".join(map(str, r["seeds"])), r["num_params"]]
                             + [raw(r.get(c)) for c in metric_cols] + [_unfinished_text(r)] for r in rows])


def build_table(runs) -> tuple[list[dict], str]:
    """``runs``: a runs directory (or a list of run records) -> (rows, markdown table with the
    unreadable runs listed after it)."""
    if not isinstance(runs, list):
        runs = load_runs(runs)
    fields, rows = aggregate(runs)
    return rows, to_markdown(fields, rows, unreadable_runs(runs))
