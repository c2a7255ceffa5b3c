"""Teacher forcing vs scheduled sampling (and always / soft sampling), per cell, on the random-LSTM
oracle, whose distribution is known: teacher-forced test perplexity next to NLL-oracle (sample
quality), NLL-test (coverage) and the exposure-bias gap. CPU, 5-15 seconds per run.

    python -m experiments.sweep --config=configs/tf_vs_ss.py --workdir=runs/tf_vs_ss --vmap_seeds
    python -c "from rnnlab.report import modes_table; print(modes_table('runs/tf_vs_ss'))"  # + exposure gaps
    python -m experiments.report --runs=runs/tf_vs_ss          # the generic table and curves

Expected (42 runs, 3 min 50 s on a shared 2-core CPU): teacher forcing test ppl 10.0-10.3 and
NLL-oracle 2.55-2.62 (oracle: 8.28 and entropy 2.118); constant SS 10.7-10.9; the decaying schedules
14.9-15.5; always sampling 16.3-16.4; soft sampling 10.5-10.8 (table and reading: docs/training_modes.md).

One run:  python -m experiments.train --config=configs/tf_vs_ss.py --workdir=runs/tfss_one \\
              --config.model.cell=gru --config.train.mode=scheduled_sampling --config.train.schedule.kind=linear

Members (get_sweep): cells {rnn, gru, lstm} x seeds {0, 1} x 7 modes: teacher_forcing,
scheduled_sampling with each schedule (constant 0.75, linear, exponential, inverse sigmoid, all
reaching eps ~ 0.05 or less by the last of the 624 steps), always_sampling, soft_sampling (inverse
sigmoid). Numbers of a real run: docs/training_modes.md. The schedule parameters below are set for
this run length (624 steps); if you change epochs or batch size, rescale them (slope ~ 1/steps,
base ~ 0.05 ** (1/steps), k with k / (k + exp(steps / k)) ~ 0.05).

GPU-scale variant (PTB word level, the Zaremba small recipe x modes), one override each:

    python -m experiments.sweep --config=configs/tf_vs_ss.py:ptb --workdir=runs/tf_vs_ss_ptb
    python -m experiments.train --config=configs/tf_vs_ss.py:ptb_char --workdir=runs/ptbc_ss \\
        --config.train.mode=scheduled_sampling

``get_config("ptb")`` is configs/ptb_small.py's recipe (2 x 200 LSTM, 13 epochs, 30.2k steps) with the
schedules rescaled to its length; ``get_config("ptb_char")`` is configs/ptb_char.py (2 x 512, 20
epochs). For the samples' perplexity under a reference model add
``--config.eval.reference=runs/<a teacher-forced run on the same corpus>``.
"""
from rnnlab.config import base_config

CELLS = ["rnn", "gru", "lstm"]
MODES = [  # (train.mode, train.schedule.kind)
    ("teacher_forcing", "constant"),
    ("scheduled_sampling", "constant"),
    ("scheduled_sampling", "linear"),
    ("scheduled_sampling", "exponential"),
    ("scheduled_sampling", "inverse_sigmoid"),
    ("always_sampling", "constant"),
    ("soft_sampling", "inverse_sigmoid"),
]


def _schedules(c, steps: int):
    """Schedules that fall from 1 to about 0.05 over ``steps`` (constant: 0.75)."""
    s = c.train.schedule
    s.eps = 0.75
    s.start, s.slope, s.eps_min = 1.0, 1.0 / steps, 0.0
    s.base = 0.05 ** (1.0 / steps)
    k = 2.0  # solve k / (k + exp(steps / k)) = 0.05 by bisection on k (hand-written schedule, see forcing.py)
    lo, hi = 1.0, float(steps)
    import math

    for _ in range(60):
        k = 0.5 * (lo + hi)
        eps_end = k / (k + math.exp(min(steps / k, 700.0)))
        lo, hi = (k, hi) if eps_end < 0.05 else (lo, k)
    s.k = k


def get_config(arg: str = "oracle"):
    c = base_config()
    if arg in ("ptb", "ptb_char"):
        return _gpu_config(arg)
    c.data.name = "oracle"
    c.data.num_train = 100_000
    c.data.num_valid = 10_000
    c.data.num_test = 10_000
    c.data.oracle.vocab_size = 32
    c.data.oracle.hidden_size = 16
    c.data.oracle.embed_size = 16
    c.data.oracle.init_std = 1.0
    c.data.oracle.entropy_tokens = 50_000
    c.model.cell = "lstm"
    c.model.hidden_size = 32
    c.model.embed_size = 16
    c.model.num_layers = 1
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.lr_hold_epochs = 3
    c.train.lr_decay = 0.5
    c.train.batch_size = 32
    c.train.bptt = 20
    c.train.epochs = 4  # 156 steps per epoch: 624 steps
    c.train.clip_norm = 1.0
    c.train.log_every = 25
    c.train.mode = "teacher_forcing"
    _schedules(c, 624)
    c.eval.batch_size = 16
    c.eval.free_running = True
    c.eval.num_samples = 512
    c.eval.prompt_len = 16
    c.eval.sample_len = 32
    c.eval.exposure_ks = (1, 4, 16)
    c.eval.gap_tokens = 4
    c.checkpoint.keep = 1
    c.wandb.mode = "disabled"
    c.train.progress = False
    return c


def _gpu_config(name: str):
    """configs/ptb_small.py (30.2k steps) or configs/ptb_char.py (about 7.8k steps) with rescaled
    schedules and the free-running metrics (longer samples)."""
    import importlib

    c = importlib.import_module(f"configs.{'ptb_small' if name == 'ptb' else 'ptb_char'}").get_config()
    _schedules(c, 30_200 if name == "ptb" else 7_800)
    c.eval.free_running = True
    c.eval.num_samples = 512
    c.eval.prompt_len = 20
    c.eval.sample_len = 50
    c.eval.exposure_ks = (1, 5, 20)
    return c


def get_sweep():
    """3 cells x 2 seeds x 7 modes (zipped mode and schedule kind): 42 runs."""
    return {"product": {"model.cell": CELLS, "train.seed": [0, 1]},
            "zip": {"train.mode": [m for m, _ in MODES], "train.schedule.kind": [k for _, k in MODES]}}
