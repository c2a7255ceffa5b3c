"""Shared recipe of Zaremba, Sutskever & Vinyals 2014 (TF ptb_word_lm.py), translated to a
per-token mean loss: TF sums the loss over the bptt time steps (and averages over the batch), so
its lr 1.0 and clip c equal lr = bptt and clip = c / bptt here (same updates)."""
from rnnlab.config import base_config


def zaremba(hidden, bptt, dropout, init_scale, clip, epochs, hold, decay):
    c = base_config()
    c.data.name = "ptb"
    c.model.cell = "lstm"
    c.model.hidden_size = hidden
    c.model.num_layers = 2
    c.model.dropout = dropout
    c.model.init = "uniform"
    c.model.init_scale = init_scale
    c.model.forget_bias = 0.0  # the TF code's BasicLSTMCell(forget_bias=0.0)
    c.model.unroll = bptt  # scan fully unrolled: speed only (docs/perf_notes.md)
    c.train.optimizer = "sgd"
    c.train.batch_size = 20
    c.train.bptt = bptt
    c.train.lr = 1.0 * bptt
    c.train.clip_norm = clip / bptt
    c.train.epochs = epochs
    c.train.lr_hold_epochs = hold
    c.train.lr_decay = decay
    c.train.log_every = 100
    c.eval.batch_size = 10
    return c
