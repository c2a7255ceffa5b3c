"""Kill -9 a training run at random moments, re-run it, and check it ends bit for bit where an
uninterrupted run ends (same params_sha256, perplexities and metrics.jsonl up to timings).

    python -m experiments.kill_resume --trials=N [--points=save:2,step:30,eval:1] [--workdir=runs/kill_resume]
        [--seed=0] [--max_kills=3] [--config=configs/quickstart.py] [--small=false]

It runs only when --trials or --points is given (a trial trains the config 2 to 4 times): with no
flags it prints this usage and exits 0; other flags without either are an error. Example:

    python -m experiments.kill_resume --workdir=runs/kill_resume --trials=3 --points=save:2,step:8,eval:1

Each trial gets its own run directory under --workdir; report.json there lists every kill (when,
whether it landed inside a checkpoint save) and every difference found. Exit status 1 when a
resume did not match. The logic is in src/rnnlab/kill_resume.py.
"""
import sys

from absl import flags

from experiments._usage import print_usage_if_bare
from rnnlab.cli import die, main_wrapper, parse_flags

flags.DEFINE_string("config", "configs/quickstart.py", "config file of the run that is killed")
flags.DEFINE_string("workdir", "runs/kill_resume", "folder for the reference run and the trials")
flags.DEFINE_integer("trials", None, "trials with random kill times (0 or more; this or --points is required)")
flags.DEFINE_integer("seed", 0, "seed of the kill times")
flags.DEFINE_integer("max_kills", 3, "kills per trial: 1 to this many")
flags.DEFINE_list("points", [], "one more trial killed at each RNNLAB_KILL_AT spec in turn (step:N, eval:N, save:N)")
flags.DEFINE_boolean("small", True, "shrink the run (20k train tokens, 2 epochs, checkpoint every 5 steps)")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    if print_usage_if_bare(__doc__):  # no flags: the usage, exit 0
        return 0
    if FLAGS.trials is None and not FLAGS.points:
        die("nothing to run: pass --trials=N and/or --points=save:2,...; with no flags this prints the usage")
    from rnnlab.faults import _parse
    from rnnlab.kill_resume import SMALL, kill_resume

    trials = FLAGS.trials or 0
    if trials < 0 or FLAGS.max_kills < 1:
        die(f"--trials={trials} and --max_kills={FLAGS.max_kills} are not valid; need trials >= 0, max_kills >= 1")
    for p in FLAGS.points:
        _parse(p)  # one-line error for a bad spec
    report = kill_resume(FLAGS.config, FLAGS.workdir, trials=trials, seed=FLAGS.seed,
                         max_kills=FLAGS.max_kills, overrides=SMALL if FLAGS.small else (), points=FLAGS.points)
    return 0 if report["matched"] == report["tried"] else 1


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
