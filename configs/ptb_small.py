"""Zaremba et al. 2014, small (non-regularized) LSTM on PTB words: 2 x 200, bptt 20, no dropout,
init +-0.1, clip 5, 13 epochs, lr 1 held 4 epochs then halved each epoch. Paper: valid 120.7,
test 114.5 (TF tutorial: test 115.91). ~4.65M parameters.

    python -m experiments.train --config=configs/ptb_small.py --workdir=runs/ptb_small
"""
from configs._zaremba import zaremba


def get_config():
    return zaremba(hidden=200, bptt=20, dropout=0.0, init_scale=0.1, clip=5.0, epochs=13, hold=4, decay=0.5)
