"""Character-level PTB (Mikolov's ptb.char.*, 50 symbols), 2 x 512 LSTM, Adam. Reports bpc.
Reference points: Bai et al. 2018 LSTM 1.36 bpc; AWD-LSTM 1.175. This recipe (GPU, ~20 epochs)
aims at about 1.4 bpc.

    python -m experiments.train --config=configs/ptb_char.py --workdir=runs/ptb_char
"""
from configs._char import char_lstm


def get_config():
    return char_lstm("ptb_char", embed_size=128, lr_decay=0.7, batch_size=128, eval_batch_size=64)
