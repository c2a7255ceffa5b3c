"""A small character-level GRU on The Time Machine (d2l preprocessing: 26 letters + space + <unk>),
for sampling and gate inspection. Trains on a 2-core CPU in about a minute or two.

    python -m experiments.train --config=configs/timemachine_char.py --workdir=runs/tm_gru
    python -m experiments.sample --workdir=runs/tm_gru --prompt="traveller you" --temperature=0.5
    python -m experiments.inspect_gates --workdir=runs/tm_gru --text="the time traveller you" --out=runs/tm_gru/gates

Expected (8 epochs, 592 steps, 87 s on a 2-core CPU; deterministic): valid ppl 4.67, test ppl 4.83
(2.27 bpc), against 17.2 for the unigram model (letter frequencies of train scored on valid). d2l's
GRU from scratch reaches a train perplexity near 1 after 500 epochs, which is memorisation of this
150k-character book, not a better valid number.
"""
from rnnlab.config import base_config


def get_config():
    c = base_config()
    c.data.name = "timemachine"
    c.data.level = "char"
    c.model.cell = "gru"
    c.model.hidden_size = 256
    c.model.embed_size = 32
    c.model.num_layers = 1
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 5e-3
    c.train.lr_hold_epochs = 4
    c.train.lr_decay = 0.6
    c.train.batch_size = 32
    c.train.bptt = 64
    c.train.epochs = 8
    c.train.clip_norm = 1.0
    c.train.log_every = 25
    c.eval.batch_size = 16
    c.wandb.mode = "disabled"
    return c
