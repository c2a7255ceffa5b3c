"""Look inside a trained run: gate heatmaps and the top-5 next tokens along a text.

    python -m experiments.inspect_gates --workdir=runs/tm_gru --text="traveller you" --out=runs/tm_gru/gates

Writes OUT/layer{l}_{gate}.png (units x time, the text along the time axis; GRU r z n h, LSTM i f g
o c h, RNN h) and OUT/top5.csv (per step: input, true next token with its probability and rank, the
top-k next tokens with probabilities).
"""
import sys

from absl import flags

from rnnlab.cli import main_wrapper, parse_flags

flags.DEFINE_string("workdir", None, "run directory (written by experiments.train)")
flags.DEFINE_string("text", None, "text to run the model over")
flags.DEFINE_string("out", None, "folder for the PNGs and the CSV")
flags.DEFINE_integer("layer", None, "only this layer (default: all)")
flags.DEFINE_integer("units", 32, "plot the first N units of each layer (0 = all)")
flags.DEFINE_integer("top_k", 5, "next tokens listed per step")
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "which checkpoint to load")
flags.DEFINE_bool("drop_unknown", False, "drop text tokens that the vocab lacks instead of failing")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab.cli import die
    from rnnlab.gates import inspect_text, top_table, write_heatmaps, write_top_csv
    from rnnlab.runs import load_run

    if not (FLAGS.workdir and FLAGS.text and FLAGS.out):
        die("--workdir=RUN, --text=TEXT and --out=DIR are required")
    if FLAGS.top_k < 1 or FLAGS.units < 0:
        die(f"--top_k={FLAGS.top_k} / --units={FLAGS.units} are not valid; need top_k >= 1 and units >= 0")
    _, model, params, vocab = load_run(FLAGS.workdir, FLAGS.checkpoint)
    unknown = "drop" if FLAGS.drop_unknown else ("unk" if vocab.level == "word" and vocab.unk else "error")
    tr = inspect_text(model, params, vocab, FLAGS.text, top_k=FLAGS.top_k, unknown=unknown)
    layers = None if FLAGS.layer is None else [FLAGS.layer]
    pngs = write_heatmaps(tr, FLAGS.out, layers=layers, units=FLAGS.units or None)
    csv = write_top_csv(top_table(tr, vocab), f"{FLAGS.out}/top{FLAGS.top_k}.csv")
    for p in pngs + [csv]:
        print(p)


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
