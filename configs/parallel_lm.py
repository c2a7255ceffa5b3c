"""Equal-parameter character LM on The Time Machine: rnn, gru, lstm, mingru, minlstm at about 25k
parameters each (one layer, embedding 32, the 28-symbol vocabulary), 3 seeds, 400 Adam steps of
32 x 64 characters (74 steps per epoch: 5.4 epochs); test perplexity mean +- std and wall time on the CPU.

    python -m experiments.sweep --config=configs/parallel_lm.py --workdir=runs/parallel_lm --vmap_seeds
    python -m experiments.report --runs=runs/parallel_lm

H per cell (parameters = embedding 28 x 32 + cell + readout H x 28 + 28): rnn 128 (25,244), gru 71
(25,277), lstm 60 (25,164), mingru 256 (24,988), minlstm 190 (25,054). minGRU / minLSTM have no
hidden-to-hidden matrix (their gates read x only), so the same budget buys them 2-4x the units.
"""
from configs import timemachine_char

CELLS = ["rnn", "gru", "lstm", "mingru", "minlstm"]
HIDDEN = [128, 71, 60, 256, 190]  # about 25k parameters each (see the docstring)


def get_config():
    """configs/timemachine_char.py's recipe (embedding 32, PyTorch init, Adam 5e-3, clip 1, 32 x 64
    windows) capped at 400 steps at a constant lr, one layer of lstm H = 60 by default."""
    c = timemachine_char.get_config()
    c.model.cell = "lstm"
    c.model.hidden_size = 60
    c.train.lr_hold_epochs = 8  # constant lr over the capped run
    c.train.lr_decay = 0.5
    c.train.max_steps = 400
    c.train.log_every = 50
    c.train.progress = False
    c.checkpoint.every_steps = 0
    return c


def get_sweep():
    """5 (cell, H) pairs zipped x 3 seeds: 15 runs."""
    return {"zip": {"model.cell": CELLS, "model.hidden_size": HIDDEN}, "product": {"train.seed": [0, 1, 2]}}
