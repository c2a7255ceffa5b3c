"""Zaremba et al. 2014, medium LSTM on PTB words: 2 x 650, bptt 35, dropout 0.5, init +-0.05,
clip 5, 39 epochs, lr 1 held 6 epochs then divided by 1.2 each epoch. Paper: valid 86.2, test 82.7
(TF tutorial 82.07; PyTorch + cuDNN on one H100: valid 86.85 / test 83.16 in 354 s). ~19.8M params.

    python -m experiments.train --config=configs/ptb_medium.py --workdir=runs/ptb_medium
"""
from configs._zaremba import zaremba


def get_config():
    return zaremba(hidden=650, bptt=35, dropout=0.5, init_scale=0.05, clip=5.0, epochs=39, hold=6, decay=1 / 1.2)
