"""Shared recipe of the character-level LSTM configs: 2 x 512 LSTM, dropout 0.25, PyTorch init,
Adam 2e-3 held 10 epochs then decayed, bptt 100, 20 epochs, clip 1."""
from rnnlab.config import base_config


def char_lstm(data_name, *, embed_size, lr_decay, batch_size, eval_batch_size):
    c = base_config()
    c.data.name = data_name
    c.model.cell = "lstm"
    c.model.hidden_size = 512
    c.model.embed_size = embed_size
    c.model.num_layers = 2
    c.model.dropout = 0.25
    c.model.init = "pytorch"
    c.train.optimizer = "adam"
    c.train.lr = 2e-3
    c.train.lr_hold_epochs = 10
    c.train.lr_decay = lr_decay
    c.train.batch_size = batch_size
    c.train.bptt = 100
    c.train.epochs = 20
    c.train.clip_norm = 1.0
    c.eval.batch_size = eval_batch_size
    c.eval.bptt = 100
    return c
