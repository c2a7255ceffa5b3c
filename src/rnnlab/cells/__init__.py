"""Recurrent cells as NamedTuples of pure functions; ``get_cell(name)`` is the registry."""
from __future__ import annotations

from .. import RnnlabError
from .base import Cell, HiddenCarry, LSTMCarry
from .gru import make_gru, make_gru_cho
from .lstm import make_lstm
from .rnn import make_rnn

CELLS = {
    "rnn": lambda: make_rnn("tanh"),
    "rnn_relu": lambda: make_rnn("relu"),
    "gru": make_gru,
    "gru_cho": make_gru_cho,
    "lstm": make_lstm,
}
# options a model passes to every cell; a cell takes the ones it knows (only the LSTM has a forget gate)
CELL_OPTIONS = {"lstm": ("forget_bias",)}


def get_cell(name: str, **options) -> Cell:
    """The cell called ``name``; options (e.g. ``forget_bias`` for the LSTM) go to its factory."""
    if name not in CELLS:
        raise RnnlabError(f"unknown cell {name!r}; valid cells: {', '.join(sorted(CELLS))}")
    known = CELL_OPTIONS.get(name, ())
    bad = [k for k in options if k not in ("forget_bias",)]
    if bad:
        raise RnnlabError(f"unknown cell option(s) {', '.join(bad)}; known: forget_bias (lstm)")
    return CELLS[name](**{k: v for k, v in options.items() if k in known})


__all__ = ["Cell", "HiddenCarry", "LSTMCarry", "CELLS", "get_cell"]
