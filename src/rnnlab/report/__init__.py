"""Runs -> comparison tables and learning curves (the end of the study: cells -> ... -> report).

For the sweep runner: ``build_table(runs_dir) -> (rows, markdown)`` is the call that prints the
table at the end of a sweep (``print(build_table(workdir)[1])``); ``write_report(runs, out_dir)``
also writes table.md / table.csv / table.tex and the plots.

Read in this order:

* ``runs_io``: run directories -> records (``load_runs``), the checks that mark a run unreadable
  (listed after every table, never averaged); ``wandb_runs``: the same records from W&B.
* ``grouping``: records -> rows, mean ± sample std (n - 1) over the finished seeds (``aggregate``).
* ``tables``: rows -> Markdown, LaTeX, CSV (``build_table``).
* ``selection``: per group, the searched fields' setting with the best validation metric (``select``).
* ``plots``: validation curves (``curve_figure``, ``plot_curves``); ``writer``: ``write_report``.
* ``modes``: the teacher forcing vs scheduled sampling study's table (``modes_table``).

Token data shows perplexities (and bpc); frame data (summary ``level: "frame"``, music) its NLL
in nats per frame, chosen by what the summaries hold.
"""
from .grouping import (CELL_ORDER, IGNORED_FIELDS, IGNORED_PREFIXES, KEY_COLUMNS, METRICS, SAMPLED, aggregate,
                       group_runs, varying_fields)
from .modes import MODE_ORDER, SCHEDULE_ORDER, modes_table
from .plots import MAX_LINES, check_formats, curve, curve_figure, plot_curves, supported_formats
from .runs_io import (UNUSED_BY_MODE, check_config, check_summary, flatten, level_of, load_runs, make_run, readable,
                      searched_fields, unreadable_runs)
from .selection import build_selection, select, selection_csv, selection_latex, selection_markdown
from .tables import build_table, table_columns, to_csv, to_latex, to_markdown
from .wandb_runs import WANDB_STATES, run_from_wandb, runs_from_wandb
from .writer import write_report

__all__ = [
    "CELL_ORDER", "IGNORED_FIELDS", "IGNORED_PREFIXES", "KEY_COLUMNS", "MAX_LINES", "METRICS", "MODE_ORDER",
    "SAMPLED", "SCHEDULE_ORDER", "UNUSED_BY_MODE", "WANDB_STATES", "aggregate", "build_selection", "build_table",
    "check_config", "check_formats", "check_summary", "curve", "curve_figure", "flatten", "group_runs", "level_of",
    "load_runs", "make_run", "modes_table", "plot_curves", "readable", "run_from_wandb", "runs_from_wandb",
    "searched_fields", "select", "selection_csv", "selection_latex", "selection_markdown", "supported_formats",
    "table_columns", "to_csv", "to_latex", "to_markdown", "unreadable_runs", "varying_fields", "write_report",
]
