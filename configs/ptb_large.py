"""Zaremba et al. 2014, large LSTM on PTB words: 2 x 1500, bptt 35, dropout 0.65, init +-0.04,
clip 10, 55 epochs, lr 1 held 14 epochs then divided by 1.15 each epoch. Paper: valid 82.2,
test 78.4 (TF tutorial 78.29). ~66M parameters.

    python -m experiments.train --config=configs/ptb_large.py --workdir=runs/ptb_large
"""
from configs._zaremba import zaremba


def get_config():
    return zaremba(hidden=1500, bptt=35, dropout=0.65, init_scale=0.04, clip=10.0, epochs=55, hold=14, decay=1 / 1.15)
