"""Train one language model.

    python -m experiments.train --config=configs/ptb_small.py --workdir=runs/x [--config.a.b=value ...]

Writes DIR/config.json, DIR/metrics.jsonl, DIR/summary.json and DIR/checkpoints/. Re-running the
same command resumes from the latest checkpoint (a finished run: "finished earlier, nothing to do").
One process per DIR at a time. SIGTERM: a checkpoint at the next step, one line, exit status 143.
"""
import json
import sys

from absl import flags
from ml_collections import config_flags

from rnnlab.cli import main_wrapper, parse_flags

config_flags.DEFINE_config_file("config", None, "config file (python, get_config())", lock_config=True)
flags.DEFINE_string("workdir", None, "run directory")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab.cli import die
    from rnnlab.rundir import finished_summary
    from rnnlab.train import train_and_evaluate

    if FLAGS.config is None or not FLAGS.workdir:
        die("both --config=configs/<name>.py and --workdir=DIR are required")
    finished_earlier = finished_summary(FLAGS.workdir) is not None
    summary = train_and_evaluate(FLAGS.config, FLAGS.workdir, config_file=flags.FLAGS["config"].value and
                                 config_flags.get_config_filename(flags.FLAGS["config"]))
    keys = ["cell", "train_mode", "num_params", "val_ppl", "test_ppl", "best_val_ppl", "test_bpc",
            "optimal_ppl", "steps", "tokens_per_sec", "wall_s"]
    if finished_earlier:  # the config matched (train_and_evaluate checked it): say why nothing ran
        print(f"{FLAGS.workdir}: finished earlier, nothing to do (its summary below; a new --workdir trains again)",
              file=sys.stderr)
    print(json.dumps({k: summary[k] for k in keys if k in summary}, indent=1))


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
