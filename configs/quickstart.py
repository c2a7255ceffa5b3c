"""Quickstart: tanh RNN vs GRU vs LSTM on the embedded Reber grammar, whose optimal perplexity is
known exactly (about 1.554: 0.636 bits per symbol, with the long-range T/P dependency; about 1.656
for a model that cannot carry it across the string). CPU, about a minute per run.

    python -m experiments.sweep --config=configs/quickstart.py --workdir=runs/quickstart

One run:  python -m experiments.train --config=configs/quickstart.py --workdir=runs/qs_lstm --config.model.cell=lstm
Expected: every cell within a few percent of the optimum; test ppl reported next to `optimal_ppl`.
"""
from rnnlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "reber"
    c.data.num_train = 120_000
    c.data.num_valid = 12_000
    c.data.num_test = 12_000
    c.model.cell = "lstm"
    c.model.hidden_size = 32
    c.model.embed_size = 8
    c.model.num_layers = 1
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 0.01
    c.train.lr_hold_epochs = 2
    c.train.lr_decay = 0.5
    c.train.batch_size = 32
    c.train.bptt = 25
    c.train.epochs = 4
    c.train.clip_norm = 1.0
    c.train.log_every = 50
    c.eval.batch_size = 16
    return c


def get_sweep():
    """3 cells x 2 seeds (grid product)."""
    return {"product": {"model.cell": ["rnn", "gru", "lstm"], "train.seed": [0, 1]}}
