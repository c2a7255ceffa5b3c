"""Recurrent cells as NamedTuples of pure functions; ``get_cell(name)`` is the registry."""
from __future__ import annotations

from .. import RnnlabError
from .base import Cell, HiddenCarry, LSTMCarry
from .gru import make_gru, make_gru_cho
from .lstm import make_lstm
from .rnn import make_rnn

CELLS = {
    "rnn": lambda **kw: make_rnn("tanh"),
    "rnn_relu": lambda **kw: make_rnn("relu"),
    "gru": lambda **kw: make_gru(),
    "gru_cho": lambda **kw: make_gru_cho(),
    "lstm": lambda forget_bias=1.0, **kw: make_lstm(forget_bias),
}


def get_cell(name: str, **options) -> Cell:
    """The cell called ``name``; options (e.g. ``forget_bias`` for the LSTM) go to its factory."""
    if name not in CELLS:
        raise RnnlabError(f"unknown cell {name!r}; valid cells: {', '.join(sorted(CELLS))}")
    return CELLS[name](**options)


__all__ = ["Cell", "HiddenCarry", "LSTMCarry", "CELLS", "get_cell"]
