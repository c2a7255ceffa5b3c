"""A/B benchmark of two git revisions in one sitting: a `git worktree` of each under /tmp, the same
`python -m experiments.benchmark` command run in each alternately (A, B, A, B, ...) with
PYTHONPATH=<worktree>/src:<worktree>, then the rows side by side with B/A and the run-to-run spread.

    python -m experiments.ab_benchmark --a REV --b REV [--rounds 2] [--sizes S] [--cells lstm,gru,rnn]
        [--impls rnnlab] [--modes tf,ss] [--steps 20] [--repeats 5] [--bench_flags="--unrolls 8"] [--out DIR]

It runs only when --a and --b are given: with no flags it prints this usage and exits 0. Example
(the refactor check: the CPU rows at size S, this commit against the previous one):

    python -m experiments.ab_benchmark --a HEAD~1 --b HEAD --sizes S --cells lstm,gru,rnn --impls rnnlab --modes tf,ss

Writes DIR/ab.md (the table), DIR/ab.json and each run's DIR/a1, b1, a2, ... benchmark files. A row
is "within noise" when |B/A - 1| <= the larger relative range (max - min) / median of A's and of B's
rounds (src/rnnlab/bench/ab.py). Revisions are commits: commit what you want to measure first.
"""
import shlex
import sys
from pathlib import Path

from absl import flags

from experiments._usage import print_usage_if_bare
from rnnlab.cli import die, main_wrapper, parse_flags

flags.DEFINE_string("a", None, "revision A, the baseline (commit, branch, tag, HEAD~1, ...)")
flags.DEFINE_string("b", None, "revision B, compared with A (B/A > 1: B is faster)")
flags.DEFINE_integer("rounds", 2, "runs of each revision, alternating A, B, A, B (2 or more give a noise estimate)")
flags.DEFINE_string("sizes", "S", "benchmark --sizes")
flags.DEFINE_string("cells", "lstm,gru,rnn", "benchmark --cells")
flags.DEFINE_string("impls", "rnnlab", "benchmark --impls")
flags.DEFINE_string("modes", "tf,ss", "benchmark --modes")
flags.DEFINE_integer("steps", 20, "benchmark --steps (timed steps per repeat)")
flags.DEFINE_integer("repeats", 5, "benchmark --repeats (timed blocks; the median is kept)")
flags.DEFINE_string("bench_flags", "", "more benchmark flags, given to both sides (write --bench_flags='--min_block 0')")
flags.DEFINE_string("out", "runs/ab_benchmark", "output folder")
flags.DEFINE_string("worktrees", "/tmp/rnnlab_ab", "folder for the two git worktrees")
flags.DEFINE_bool("keep", False, "keep the worktrees afterwards (default: remove them)")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    if print_usage_if_bare(__doc__):  # no flags: the usage, exit 0
        return 0
    if FLAGS.a is None or FLAGS.b is None:
        die("pass both --a and --b (git revisions, e.g. --a HEAD~1 --b HEAD); with no flags this prints the usage")
    from rnnlab.bench.ab import ab_markdown, run_ab

    args = ["--sizes", FLAGS.sizes, "--cells", FLAGS.cells, "--impls", FLAGS.impls, "--modes", FLAGS.modes,
            "--steps", str(FLAGS.steps), "--repeats", str(FLAGS.repeats), *shlex.split(FLAGS.bench_flags)]
    repo = Path(__file__).resolve().parents[1]
    result = run_ab(repo, FLAGS.a, FLAGS.b, args, rounds=FLAGS.rounds, out_dir=FLAGS.out, worktrees=FLAGS.worktrees,
                    keep=FLAGS.keep, log=lambda line: print(line, flush=True))
    print("\n" + ab_markdown(result))
    print(f"wrote {Path(FLAGS.out) / 'ab.md'} and ab.json")


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
