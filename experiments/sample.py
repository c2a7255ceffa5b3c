"""Sample text from a trained run.

    python -m experiments.sample --workdir=runs/tm_gru --prompt="traveller you" --temperature=0.8

Loads the run's best (or --checkpoint=latest) parameters and vocab, warms the carry on the prompt
and generates --length tokens with one lax.scan. --temperature=0 or --greedy: argmax. Same --seed,
same text; sample i of --num_samples=N does not depend on N. Prompt tokens not in the vocab: word
level -> <unk> with a warning; char level -> an error naming them, or dropped with --drop_unknown.

A sequence-to-sequence run (data of kind pairs) decodes a source instead and prints the target:

    python -m experiments.sample --workdir=runs/s2s/reverse_lstm --source=abcde [--beam=4]

greedy by default, beam search with --beam=K (K >= 1), up to <eos> or --length tokens; source tokens
not in the vocab map to <unk> with a warning.
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
flags.DEFINE_string("source", None, "seq2seq runs: the source to decode (the target is printed)")
flags.DEFINE_integer("beam", 1, "seq2seq runs: beam width (1 = greedy)")
FLAGS = flags.FLAGS
LARGE_OUTPUT = 1_000_000  # tokens above which a warning says how long it takes
TOKENS_PER_S = 10_000  # measured: 20,000 tokens of the README's 1 x 256 GRU in about 2 s after compiling (2-core CPU)


def main():
    parse_flags()
    from rnnlab.cli import die
    from rnnlab.runs import load_run
    from rnnlab.sampling import sample_text, translate_run
    from rnnlab.seq2seq.runs import run_kind

    if not FLAGS.workdir:
        die("--workdir=DIR (a trained run) is required")
    if FLAGS.source is not None or run_kind(FLAGS.workdir) == "pairs":  # a seq2seq run: decode the source
        print(translate_run(FLAGS.workdir, FLAGS.source, checkpoint=FLAGS.checkpoint, beam_size=FLAGS.beam,
                            max_len=FLAGS.length, warn=lambda m: print(f"warning: {m}", file=sys.stderr)))
        return
    model, params, vocab = load_run(FLAGS.workdir, FLAGS.checkpoint)[1:]
    tokens = FLAGS.length * FLAGS.num_samples
    if tokens > LARGE_OUTPUT:  # one lax.scan: nothing to report until it returns
        print(f"warning: generating {tokens:,} tokens (--length x --num_samples) in one lax.scan shows no progress "
              f"until it ends; about {TOKENS_PER_S:,} tokens/s for a 1 x 256 GRU on a 2-core CPU, so roughly "
              f"{tokens / TOKENS_PER_S / 60:,.0f} min on such a machine, and {tokens * 4 / 1e6:,.0f} MB of token ids; Ctrl-C stops it",
              file=sys.stderr, flush=True)
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
