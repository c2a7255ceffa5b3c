"""Sample text from a trained run.

    python -m experiments.sample --workdir=runs/tm_gru --prompt="traveller you" --temperature=0.8

Loads the run's best (or --checkpoint=latest) parameters and vocab, warms the carry on the prompt
and generates --length tokens with one lax.scan. --temperature=0 or --greedy: argmax. Same --seed,
same text; sample i of --num_samples=N does not depend on N. Prompt tokens not in the vocab: word
level -> <unk> with a warning; char level -> an error naming them, or dropped with --drop_unknown.
"""
import sys

from absl import flags

from rnnlab.cli import main_wrapper, parse_flags

flags.DEFINE_string("workdir", None, "run directory (written by experiments.train)")
flags.DEFINE_string("prompt", "", "text to warm the carry on ('' = start from <eos>, newline or space)")
flags.DEFINE_integer("length", 200, "tokens to generate")
flags.DEFINE_float("temperature", 0.8, "softmax temperature; 0 = greedy")
flags.DEFINE_integer("top_k", 0, "keep the k most likely tokens (0 = all)")
flags.DEFINE_float("top_p", 1.0, "keep the smallest set of tokens with this much probability (1 = all)")
flags.DEFINE_bool("greedy", False, "argmax decoding (same as --temperature=0)")
flags.DEFINE_integer("num_samples", 1, "independent samples")
flags.DEFINE_integer("seed", 0, "sampling seed")
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "which checkpoint to load")
flags.DEFINE_bool("drop_unknown", False, "drop prompt tokens that the vocab lacks instead of failing")
FLAGS = flags.FLAGS


def main():
    parse_flags()
    from rnnlab.cli import die
    from rnnlab.runs import load_run
    from rnnlab.sampling import sample_text

    if not FLAGS.workdir:
        die("--workdir=DIR (a trained run) is required")
    model, params, vocab = load_run(FLAGS.workdir, FLAGS.checkpoint)[1:]
    texts = sample_text(model, params, vocab, FLAGS.prompt, length=FLAGS.length, seed=FLAGS.seed,
                        num_samples=FLAGS.num_samples, temperature=FLAGS.temperature, top_k=FLAGS.top_k,
                        top_p=FLAGS.top_p, greedy=FLAGS.greedy, drop_unknown=FLAGS.drop_unknown,
                        warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    sep = " " if vocab.level == "word" and FLAGS.prompt else ""
    for i, text in enumerate(texts):
        if len(texts) > 1:
            print(f"--- sample {i}")
        print(FLAGS.prompt + sep + text)


if __name__ == "__main__":
    sys.exit(main_wrapper(main))
