"""Character-level PTB (Mikolov's ptb.char.*, 50 symbols), 2 x 512 LSTM, Adam. Reports bpc.
Reference points: Bai et al. 2018 LSTM 1.36 bpc; AWD-LSTM 1.175. This recipe (GPU, ~20 epochs)
aims at about 1.4 bpc.

    python -m experiments.train --config=configs/ptb_char.py --workdir=runs/ptb_char
"""
from rnnlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "ptb_char"
    c.model.cell = "lstm"
    c.model.hidden_size = 512
    c.model.embed_size = 128
    c.model.num_layers = 2
    c.model.dropout = 0.25
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 2e-3
    c.train.lr_hold_epochs = 10
    c.train.lr_decay = 0.7
    c.train.batch_size = 128
    c.train.bptt = 100
    c.train.epochs = 20
    c.train.clip_norm = 1.0
    c.eval.batch_size = 64
    c.eval.bptt = 100
    return c
