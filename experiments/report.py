"""Comparison table (Markdown, CSV, LaTeX) and learning-curve plots (PNG, SVG) of a study.

    python -m experiments.report --runs=runs/quickstart [--out=runs/quickstart/report]
    python -m experiments.report --wandb=ENTITY/PROJECT [--wandb_group=STUDY] --out=reports/x

--runs reads every run directory (config.json) under DIR; --wandb reads the runs of a W&B project
with the public API (online, logged in). Prints the table; writes table.md, table.csv, table.tex,
rows.json and plots/<data>_val_ppl_vs_{step,wall}.{png,svg} under --out.
"""
import sys
from pathlib import Path

from absl import flags

from rnnlab.cli import die, main_wrapper, parse_flags

flags.DEFINE_string("runs", None, "folder of run directories (searched recursively for config.json)")
flags.DEFINE_string("out", None, "output folder; default <runs>/report")
flags.DEFINE_string("wandb", None, "ENTITY/PROJECT: read the runs from W&B instead of --runs")
flags.DEFINE_string("wandb_group", None, "with --wandb: only the runs of this group (study)")
flags.DEFINE_list("formats", ["png", "svg"], "plot file formats")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab import report

    if bool(FLAGS.runs) == bool(FLAGS.wandb):
        die("pass exactly one of --runs=DIR (run directories) or --wandb=ENTITY/PROJECT")
    if FLAGS.wandb:
        if not FLAGS.out:
            die("--wandb needs --out=DIR for the table and plots")
        runs = report.runs_from_wandb(FLAGS.wandb, {"group": FLAGS.wandb_group} if FLAGS.wandb_group else None)
    else:
        runs = report.load_runs(FLAGS.runs)
    out = Path(FLAGS.out or Path(FLAGS.runs) / "report")
    res = report.write_report(runs, out, formats=tuple(FLAGS.formats))
    print(res["markdown"])
    print(f"{len(runs)} runs; wrote {out}/table.md, table.csv, table.tex and {out}/plots/ "
          f"({len([f for f in res['files'] if '/plots/' in f])} files)")


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
