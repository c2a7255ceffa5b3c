"""The exposure-bias study on sequence to sequence (issue 13): teacher forcing vs scheduled sampling
(inverse sigmoid, linear) vs always sampling vs professor forcing, judged by free-running (greedy
and beam) decoding, for rnn / gru / lstm encoder-decoders, 3 seeds each.

Synthetic tasks (copy, reverse, sort, addition; 4 x 3 cells x 5 modes x 3 seeds = 180 runs): train
and valid sources of 1-10 symbols (addition: 1-10 digits per operand), test sources of 11-15 (length
generalisation); 2,000 train pairs, 1 x 64 units, 12 epochs (480 steps) of Adam:

    python -m experiments.sweep --config=configs/seq2seq_study.py --workdir=runs/seq2seq_study --vmap_seeds
    python -c "from rnnlab.seq2seq.study import study_tables; print(study_tables('runs/seq2seq_study'))"

English -> French, reduced for the CPU (pairs of at most 4 words a side: 8,342 train pairs, vocabs
1,643 / 2,064 with the study's data.seed; 1 x 128 LSTM, 10 epochs; 5 modes x 3 seeds = 15 runs;
data.name pinned on the command line):

    python -m experiments.sweep --config=configs/seq2seq_study.py:fra_eng --config.data.name=fra_eng \\
        --config.model.cell=lstm --workdir=runs/seq2seq_study_fra --vmap_seeds

One run:  python -m experiments.train --config=configs/seq2seq_study.py --workdir=runs/s2s_one \\
              --config.data.name=reverse --config.model.cell=gru --config.train.mode=professor_forcing

The schedules fall from eps = 1 over the run, the inverse sigmoid to 0.05 (configs/tf_vs_ss.py's rule),
the linear one to 0; professor forcing uses the defaults of train.professor (weight 1, a 64-unit
bidirectional GRU discriminator, Adam 1e-3, Lamb's gates 0.99 / 0.75). Wall times and the results:
README, "Sequence to sequence".
"""
import math

from scipy.optimize import brentq

from rnnlab.config import base_config

TASKS = ["copy", "reverse", "sort", "addition"]
CELLS = ["rnn", "gru", "lstm"]
MODES = [  # (train.mode, train.schedule.kind)
    ("teacher_forcing", "constant"),
    ("scheduled_sampling", "inverse_sigmoid"),
    ("scheduled_sampling", "linear"),
    ("always_sampling", "constant"),
    ("professor_forcing", "constant"),
]
SEEDS = [0, 1, 2]


def schedules(c, steps: int) -> None:
    """linear: from 1 to 0 over ``steps``; inverse sigmoid: k with k / (k + exp(steps / k)) = 0.05 (eps
    ends at 0.05; configs/tf_vs_ss.py's rule, the root found by scipy's brentq)."""
    s = c.train.schedule
    s.start, s.slope, s.eps_min = 1.0, 1.0 / steps, 0.0
    s.k = float(brentq(lambda k: k / (k + math.exp(min(steps / k, 700.0))) - 0.05, 1.0, float(steps)))


def get_config(arg: str = "synthetic"):
    c = base_config()
    c.data.name = "copy"
    t = c.data.task
    t.min_len, t.max_len, t.test_min_len, t.test_max_len = 1, 10, 11, 15
    t.num_train, t.num_valid, t.num_test = 2000, 200, 200
    c.model.cell = "lstm"
    c.model.hidden_size = 64
    c.model.num_layers = 1
    c.model.embed_size = 32
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.lr_decay = 1.0
    c.train.clip_norm = 1.0
    c.train.batch_size = 50
    c.train.epochs = 12  # 40 steps per epoch: 480 steps
    c.train.log_every = 20
    c.eval.batch_size = 200
    c.eval.beam_size = 4
    steps = 480
    if arg == "fra_eng":
        c.data.name = "fra_eng"
        t.max_tokens = 4
        c.model.hidden_size, c.model.embed_size = 128, 64
        c.train.batch_size, c.train.epochs = 64, 10  # 131 steps per epoch: 1,310 steps
        steps = 1310
    elif arg != "synthetic":
        raise ValueError(f"configs/seq2seq_study.py takes '' or ':fra_eng', not {arg!r}")
    schedules(c, steps)
    c.checkpoint.keep = 1
    c.wandb.mode = "disabled"
    c.train.progress = False
    return c


def get_sweep():
    """tasks x cells x seeds x 5 modes (zipped mode and schedule kind)."""
    return {"product": {"data.name": TASKS, "model.cell": CELLS, "train.seed": SEEDS},
            "zip": {"train.mode": [m for m, _ in MODES], "train.schedule.kind": [k for _, k in MODES]}}
