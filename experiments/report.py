"""Comparison table (Markdown, CSV, LaTeX), model selection and learning-curve plots of a study.

    python -m experiments.report --runs=runs/quickstart [--out=runs/quickstart/report]
    python -m experiments.report --runs=runs/music_lr --select=train.lr
    python -m experiments.report --wandb=ENTITY/PROJECT [--wandb_group=STUDY] --out=reports/x

--runs reads every run directory (config.json) under DIR; --wandb reads the runs of a W&B project
with the public API (online, logged in). Prints the table (and the selection table); writes
table.md, table.csv, table.tex, rows.json, unreadable.json, selection.{md,csv,tex,json} (with
--select, or when DIR/sweep.json has a random part) and plots/<data>_val_{ppl,nll}_vs_{step,wall}.<fmt>
under --out.
"""
import sys
from pathlib import Path

from absl import flags

from rnnlab.cli import die, main_wrapper, parse_flags

flags.DEFINE_string("runs", None, "folder of run directories (searched recursively for config.json)")
flags.DEFINE_string("out", None, "output folder; default <runs>/report")
flags.DEFINE_string("wandb", None, "ENTITY/PROJECT: read the runs from W&B instead of --runs")
flags.DEFINE_string("wandb_group", None, "with --wandb: only the runs of this group (study)")
flags.DEFINE_list("formats", ["png", "svg"], "plot file formats (any matplotlib can save: png, svg, pdf, ...)")
flags.DEFINE_list("select", None, "searched fields to select over by validation (e.g. train.lr); "
                  "default with --runs: the random part of DIR/sweep.json")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab import report

    if bool(FLAGS.runs) == bool(FLAGS.wandb):
        die("pass exactly one of --runs=DIR (run directories) or --wandb=ENTITY/PROJECT")
    formats = report.check_formats(FLAGS.formats)  # before anything is read or written
    if FLAGS.wandb:
        if not FLAGS.out:
            die("--wandb needs --out=DIR for the table and plots")
        runs = report.runs_from_wandb(FLAGS.wandb, {"group": FLAGS.wandb_group} if FLAGS.wandb_group else None)
        select = FLAGS.select
    else:
        runs = report.load_runs(FLAGS.runs)
        select = FLAGS.select or report.searched_fields(FLAGS.runs)
    out = Path(FLAGS.out or Path(FLAGS.runs) / "report")
    res = report.write_report(runs, out, formats=formats, select_fields=select)
    print(res["markdown"])
    if "selection_markdown" in res:
        print(res["selection_markdown"])
    print(f"{len(runs)} runs ({len(res['unreadable'])} unreadable); wrote {out}/table.md, table.csv, table.tex"
          + (", selection.md" if "selection" in res else "")
          + f" and {out}/plots/ ({len([f for f in res['files'] if '/plots/' in f])} files)")


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
