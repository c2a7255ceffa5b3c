"""Tiny Shakespeare (char-rnn), character level, 2 x 512 LSTM, Adam; first 90% train, 5% valid,
5% test. char-rnn's reference model reaches a validation loss of about 1.4 nats/char (~2.0 bpc)
with 3 x 512; this recipe aims at about 1.5 nats (valid ppl ~4.5) after 20 epochs on a GPU.

    python -m experiments.train --config=configs/tinyshakespeare.py --workdir=runs/shakespeare
CPU smoke test: add --config.train.max_steps=200 --config.model.hidden_size=128
"""
from configs._char import char_lstm


def get_config():
    return char_lstm("tinyshakespeare", embed_size=64, lr_decay=0.8, batch_size=64, eval_batch_size=32)
