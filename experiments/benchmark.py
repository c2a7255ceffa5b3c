"""Benchmark the word-level LM: rnnlab (teacher forcing, scheduled sampling, seeds vmapped) against
torch nn.LSTM/GRU/RNN (cuDNN on a GPU), a torch cell loop with scheduled sampling and flax nn.RNN.

    python -m experiments.benchmark --sizes S [--cells lstm,gru,rnn] [--impls rnnlab,torch,...]
        [--modes tf,ss] [--steps N] [--repeats R] [--unrolls 0,1,8] [--dtypes float32,bfloat16]
        [--samplers gumbel,inverse_cdf] [--out DIR]

Speed against sequence length (--lengths; rnnlab rows only, one layer, B = --batch, H = --hidden,
V = --vocab; --cells default mingru,minlstm,output_to_hidden,lstm,gru; bench/length_rows.py):

    python -m experiments.benchmark --lengths 64,256,1024,4096 --steps 3 --repeats 3 --warmup 1 --plot docs/parallel_tokens_per_s.png

It runs only when --sizes or --lengths is given (a run takes minutes): with no flags it prints this
usage and exits 0; other flags without them are an error. Example (the CPU rows of docs/benchmarks.md):

    python -m experiments.benchmark --sizes S --cells lstm,gru,rnn --impls rnnlab --modes tf,ss

Writes DIR/benchmark.json (list of records) and DIR/benchmark.md (tables with ratios, device, versions);
with --lengths DIR/lengths.json and DIR/lengths.md (tokens/s, step and compile time per T).
See src/rnnlab/bench/ for what is timed and how; docs/benchmarks.md for results.
"""
import os
import shlex
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
flags.DEFINE_string("samplers", "gumbel", "rnnlab ss rows: train.sampler values to compare (gumbel, inverse_cdf)")
flags.DEFINE_bool("autodiff", False, "also time rnnlab with plain-autodiff backward of the recurrence")
flags.DEFINE_string("torch_dtypes", "float32", "torch tf rows: float32 and/or float16 (a GPU only: cuDNN's persistent "
                    "kernels, the strongest peer)")
flags.DEFINE_bool("interleave", True, "time the rows of one size and cell block by block in turn (peers see the "
                  "same machine); --nointerleave: one row after another")
flags.DEFINE_integer("seeds", 8, "seeds vmapped in the rnnlab_seeds rows")
flags.DEFINE_float("dropout", 0.0, "dropout on non-recurrent connections (all implementations)")
flags.DEFINE_integer("torch_threads", 0, "torch CPU threads (0 = default); for XLA: XLA_FLAGS=--xla_cpu_multi_thread_eigen=false")
flags.DEFINE_string("lengths", None, "comma-separated sequence lengths T: the speed-against-length rows (e.g. 64,256,1024,4096)")
flags.DEFINE_integer("batch", 8, "--lengths rows: B sequences per step")
flags.DEFINE_integer("hidden", 128, "--lengths rows: H units (one layer; embedding = H)")
flags.DEFINE_integer("vocab", 64, "--lengths rows: V tokens")
flags.DEFINE_float("eps", 0.5, "scheduled sampling rows: probability of feeding the gold token")
flags.DEFINE_string("plot", None, "--lengths: also write tokens/s against T to this image file (e.g. .png)")
flags.DEFINE_string("load", "", "--lengths: a note on the machine's load, printed with the tables (e.g. 'load 4')")
flags.DEFINE_string("out", "runs/benchmark", "output folder")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    if print_usage_if_bare(__doc__):  # no flags: the usage, exit 0
        return 0
    if FLAGS.sizes is None and FLAGS.lengths is None:
        die("nothing to run: pass --sizes (e.g. --sizes S) or --lengths (e.g. --lengths 64,256); with no flags "
            "this prints the usage")
    from rnnlab import bench
    from rnnlab.heads import SAMPLERS

    p = bench.parse_list
    ints = lambda text: tuple(int(u) for u in text.split(",") if u.strip())  # noqa: E731
    if FLAGS.lengths is not None:
        return run_lengths(p)
    rows = (p(FLAGS.sizes, tuple(bench.SIZES), "--sizes"), p(FLAGS.cells, bench.CELLS, "--cells"),
            p(FLAGS.impls, bench.IMPLS, "--impls"), p(FLAGS.modes, bench.MODES, "--modes"))
    opts = bench.Options(steps=FLAGS.steps, repeats=FLAGS.repeats, warmup=FLAGS.warmup, dropout=FLAGS.dropout,
                         min_block_s=FLAGS.min_block, torch_threads=FLAGS.torch_threads,
                         unrolls=ints(FLAGS.unrolls), autodiff=FLAGS.autodiff, seeds=FLAGS.seeds,
                         interleave=FLAGS.interleave,
                         torch_dtypes=p(FLAGS.torch_dtypes, ("float32", "float16"), "--torch_dtypes"),
                         dtypes=p(FLAGS.dtypes, ("float32", "bfloat16"), "--dtypes"),
                         samplers=p(FLAGS.samplers, SAMPLERS, "--samplers"))  # heads.SAMPLERS
    env = bench.environment()
    print(f"device: {env.get('torch_device') or env['device']}; jax {env['jax']}, torch {env.get('torch', '-')}",
          flush=True)
    records = bench.run_benchmark(*rows, opts, log=lambda line: print(line, flush=True))
    jpath, mpath = bench.write_results(records, env, FLAGS.out, "python -m experiments.benchmark " + " ".join(sys.argv[1:]))
    print(mpath.read_text())
    print(f"wrote {jpath} and {mpath}")


def run_lengths(p):
    """The --lengths rows (bench.length_rows; rnnlab only)."""
    from rnnlab import bench

    cells = p(FLAGS.cells, bench.LENGTH_CELLS + bench.CELLS, "--cells") if FLAGS["cells"].present else bench.LENGTH_CELLS
    opts = bench.Options(steps=FLAGS.steps, repeats=FLAGS.repeats, warmup=FLAGS.warmup, dropout=FLAGS.dropout,
                         min_block_s=FLAGS.min_block, eps=FLAGS.eps)
    bench.length_benchmark(bench.parse_lengths(FLAGS.lengths), cells, p(FLAGS.modes, bench.MODES, "--modes"), opts,
                           sizes=(FLAGS.batch, FLAGS.hidden, FLAGS.vocab), out=FLAGS.out, plot=FLAGS.plot,
                           load=FLAGS.load, command="python -m experiments.benchmark " + shlex.join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
