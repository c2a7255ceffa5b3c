"""Benchmark the word-level LM: rnnlab (teacher forcing, scheduled sampling, seeds vmapped) against
torch nn.LSTM/GRU/RNN (cuDNN on a GPU), a torch cell loop with scheduled sampling and flax nn.RNN.

    python -m experiments.benchmark --sizes S [--cells lstm,gru,rnn] [--impls rnnlab,torch,...]
        [--modes tf,ss] [--steps N] [--repeats R] [--unrolls 0,1,8] [--dtypes float32,bfloat16] [--out DIR]

It runs only when --sizes is given (a run takes minutes): with no flags it prints this usage and
exits 0; other flags without --sizes are an error. Example (the CPU rows of docs/benchmarks.md):

    python -m experiments.benchmark --sizes S --cells lstm,gru,rnn --impls rnnlab --modes tf,ss

Writes DIR/benchmark.json (list of records) and DIR/benchmark.md (tables with ratios, device, versions).
See src/rnnlab/bench/ for what is timed and how; docs/benchmarks.md for results.
"""
import os
import sys

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to torch as well

from absl import flags  # noqa: E402

from experiments._usage import print_usage_if_bare  # noqa: E402
from rnnlab.cli import die, main_wrapper, parse_flags  # noqa: E402

flags.DEFINE_string("sizes", None, "comma-separated sizes: T (tiny), S, M, L, W (required to run; e.g. S)")
flags.DEFINE_string("cells", "lstm,gru,rnn", "comma-separated cells: lstm, gru, rnn")
flags.DEFINE_string("impls", "rnnlab,torch,torch_loop,flax,rnnlab_seeds", "comma-separated implementations")
flags.DEFINE_string("modes", "tf,ss", "tf (teacher forcing), ss (scheduled sampling)")
flags.DEFINE_integer("steps", 20, "timed steps per repeat")
flags.DEFINE_integer("repeats", 5, "timed repeats (median)")
flags.DEFINE_integer("warmup", 3, "untimed steps after compiling")
flags.DEFINE_float("min_block", 0.2, "lengthen each timed block to at least this many seconds (0 = exactly --steps)")
flags.DEFINE_string("unrolls", "", "rnnlab scan unroll factors to compare (0 = full window); '' = config default")
flags.DEFINE_string("dtypes", "float32", "rnnlab model.matmul_dtype values to compare")
flags.DEFINE_bool("autodiff", False, "also time rnnlab with plain-autodiff backward of the recurrence")
flags.DEFINE_integer("seeds", 8, "seeds vmapped in the rnnlab_seeds rows")
flags.DEFINE_float("dropout", 0.0, "dropout on non-recurrent connections (all implementations)")
flags.DEFINE_integer("torch_threads", 0, "torch CPU threads (0 = default); for XLA: XLA_FLAGS=--xla_cpu_multi_thread_eigen=false")
flags.DEFINE_string("out", "runs/benchmark", "output folder")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    if print_usage_if_bare(__doc__):  # no flags: the usage, exit 0
        return 0
    if FLAGS.sizes is None:
        die("nothing to run: pass --sizes (e.g. --sizes S); with no flags this prints the usage")
    from rnnlab import bench

    p = bench.parse_list
    ints = lambda text: tuple(int(u) for u in text.split(",") if u.strip())  # noqa: E731
    rows = (p(FLAGS.sizes, tuple(bench.SIZES), "--sizes"), p(FLAGS.cells, bench.CELLS, "--cells"),
            p(FLAGS.impls, bench.IMPLS, "--impls"), p(FLAGS.modes, bench.MODES, "--modes"))
    opts = bench.Options(steps=FLAGS.steps, repeats=FLAGS.repeats, warmup=FLAGS.warmup, dropout=FLAGS.dropout,
                         min_block_s=FLAGS.min_block, torch_threads=FLAGS.torch_threads,
                         unrolls=ints(FLAGS.unrolls), autodiff=FLAGS.autodiff, seeds=FLAGS.seeds,
                         dtypes=p(FLAGS.dtypes, ("float32", "bfloat16"), "--dtypes"))
    env = bench.environment()
    print(f"device: {env.get('torch_device') or env['device']}; jax {env['jax']}, torch {env.get('torch', '-')}",
          flush=True)
    records = bench.run_benchmark(*rows, opts, log=lambda line: print(line, flush=True))
    jpath, mpath = bench.write_results(records, env, FLAGS.out, "python -m experiments.benchmark " + " ".join(sys.argv[1:]))
    print(mpath.read_text())
    print(f"wrote {jpath} and {mpath}")


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
