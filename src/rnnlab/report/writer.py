"""``write_report``: every table and plot of a study into one folder.

Files: table.md / table.csv / table.tex / rows.json (``grouping.aggregate``), unreadable.json (the
runs left out, [] when none), selection.md / .csv / .tex / .json when fields are selected over
(``selection.select``), and plots/<data>_<metric>_vs_{step,wall}.<format>. The plot formats are
checked before anything is written.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..tracking import write_json
from .grouping import aggregate
from .plots import check_formats, plot_curves
from .runs_io import load_runs, searched_fields, unreadable_runs
from .selection import select, selection_csv, selection_latex, selection_markdown
from .tables import to_csv, to_latex, to_markdown


def clean(v):
    """nan / inf -> None, recursively (strict JSON)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    return v


def write_report(runs, out_dir, formats=("png", "svg"), select_fields=None) -> dict:
    """Tables and plots under ``out_dir``. ``runs``: a runs directory (its sweep.json's random part
    gives ``select_fields`` when not passed) or run records. -> {"markdown", "rows", "unreadable",
    "files"} plus, with selection, "selection_markdown" and "selection"."""
    formats = check_formats(formats)
    if not isinstance(runs, list):
        select_fields = select_fields or searched_fields(runs)
        runs = load_runs(runs)
    out_dir = Path(out_dir)
    fields, rows = aggregate(runs)
    bad = unreadable_runs(runs)
    chosen = select(runs, select_fields) if select_fields else None  # checked before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    md = to_markdown(fields, rows, bad)
    texts = {"table.md": md, "table.csv": to_csv(fields, rows), "table.tex": to_latex(fields, rows)}
    data = {"rows.json": rows, "unreadable.json": bad}
    res = {"markdown": md, "rows": rows, "unreadable": bad}
    if chosen is not None:
        res["selection_markdown"] = texts["selection.md"] = selection_markdown(*chosen, bad)
        texts["selection.csv"], texts["selection.tex"] = selection_csv(*chosen), selection_latex(*chosen)
        res["selection"] = data["selection.json"] = chosen[2]
    for name, text in texts.items():
        (out_dir / name).write_text(text)
    for name, value in data.items():
        write_json(out_dir / name, clean(value))
    res["files"] = [str(out_dir / n) for n in (*texts, *data)] + plot_curves(runs, out_dir / "plots", formats)
    return res
