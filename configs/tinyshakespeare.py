"""Tiny Shakespeare (char-rnn), character level, 2 x 512 LSTM, Adam; first 90% train, 5% valid,
5% test. char-rnn's reference model reaches a validation loss of about 1.4 nats/char (~2.0 bpc)
with 3 x 512; this recipe aims at about 1.5 nats (valid ppl ~4.5) after 20 epochs on a GPU.

    python -m experiments.train --config=configs/tinyshakespeare.py --workdir=runs/shakespeare
CPU smoke test: add --config.train.max_steps=200 --config.model.hidden_size=128
"""
from rnnlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "tinyshakespeare"
    c.model.cell = "lstm"
    c.model.hidden_size = 512
    c.model.embed_size = 64
    c.model.num_layers = 2
    c.model.dropout = 0.25
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 2e-3
    c.train.lr_hold_epochs = 10
    c.train.lr_decay = 0.8
    c.train.batch_size = 64
    c.train.bptt = 100
    c.train.epochs = 20
    c.train.clip_norm = 1.0
    c.eval.batch_size = 32
    return c
