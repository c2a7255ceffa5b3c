"""Chung et al. 2014 (section 4, Table 2): tanh RNN vs GRU vs LSTM on polyphonic music, ~20K
parameters each, with teacher forcing and scheduled sampling. Every piece is its own sequence
(zero carry at its start); the metric is the NLL per time step (nats, summed over the 88 keys).

    python -m experiments.sweep --config=configs/chung_music.py --workdir=runs/chung_music --vmap_seeds
    python -m experiments.report --runs=runs/chung_music --select=train.lr      # the table (model selection)

Recipe (REFERENCES.md): one layer; tanh 100 units, GRU 46 (reset-before: ``gru_cho``), LSTM 36 with
diagonal peepholes (``lstm_peephole``); the frames feed the recurrent layer directly
(``model.frame_projection=False``: its input matrix is the input layer, so the counted parameters
are those of Chung's models on 88-dim frames); 88 Bernoulli outputs. RMSProp, gradient norm
rescaled to 1 when larger, weight noise std 0.075 (Graves 2011), early stopping on validation
(the best checkpoint is evaluated on test). Learning rate: the best on validation of 10 samples
log-uniform in [exp(-12), exp(-6)] = [6.1e-6, 2.5e-3] (natural base: the paper writes exp(U(-12, -6))
without a base, and only base e gives learning rates RMSProp trains with; base 10 would be 1e-12 ..
1e-6), the same 10 values for every cell, mode and seed (sweep seed 0).

``get_config("nottingham")`` (or musedata, piano_midi: those two download by URL) selects the
data set; the sweep runs JSB Chorales and Nottingham. Scheduled sampling feeds back a frame drawn
from the 88 Bernoullis (inverse-sigmoid schedule, coin per frame).
"""
import math

from rnnlab.config import base_config

CELLS = ["rnn", "gru_cho", "lstm_peephole"]
HIDDEN = [100, 46, 36]  # ~20K parameters each in Chung et al.'s count (input + recurrent weights)
DATASETS = ["jsb_chorales", "nottingham"]


def get_config(dataset: str = "jsb_chorales"):
    c = base_config()
    c.data.name = dataset or "jsb_chorales"
    c.model.cell, c.model.hidden_size = "lstm_peephole", 36
    c.model.num_layers = 1
    c.model.frame_projection = False
    c.model.init = "pytorch"  # U(+-1/sqrt(H)) cells and readout
    c.train.optimizer = "rmsprop"
    c.train.lr = 1e-3
    c.train.lr_decay = 1.0
    c.train.clip_norm = 1.0  # rescale the gradient norm to 1 when larger
    c.train.weight_noise = 0.075
    c.train.early_stop_patience = 5  # validations (epochs) without improvement
    c.train.epochs = 60
    c.train.batch_size = 16  # pieces per batch
    c.train.bptt = 100  # window length within a piece (the carry passes on inside the piece)
    c.train.log_every = 10
    c.train.schedule.kind = "inverse_sigmoid"
    c.train.schedule.k = 150.0  # eps = 1/2 after k ln k = 750 updates
    c.eval.batch_size = 64
    c.eval.bptt = 200
    return c


def get_sweep():
    """data sets x cells (at their Chung sizes) x {teacher forcing, scheduled sampling} x 3 seeds x 10 lr."""
    return {
        "product": {"data.name": DATASETS, "train.mode": ["teacher_forcing", "scheduled_sampling"],
                    "train.seed": [0, 1, 2]},
        "zip": {"model.cell": CELLS, "model.hidden_size": HIDDEN},
        "random": {"train.lr": {"log_uniform": [math.exp(-12.0), math.exp(-6.0)]}},
        "samples": 10,
        "seed": 0,
    }
