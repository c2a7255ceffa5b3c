"""Recurrent cells as NamedTuples of pure functions; ``get_cell(name)`` is the registry.

=================  =====================================================================  ==========================
name               cell                                                                   checked against
=================  =====================================================================  ==========================
``rnn``            Elman, tanh (``rnn_relu``: relu)                                       torch.nn.RNN, flax SimpleCell
``gru``            reset-after GRU (cuDNN)                                                torch.nn.GRU, flax GRUCell
``gru_cho``        reset-before GRU (Cho et al. 2014)                                     its numpy equations
``lstm``           LSTM i, f, g, o, forget bias 1.0                                       torch.nn.LSTM, flax LSTMCell
``lstm_peephole``  LSTM with diagonal peepholes p_i, p_f (c_{t-1}), p_o (c_t)              its numpy equations
                   (Gers & Schmidhuber 2000, Graves 2013 eq. 7-11, Chung et al. 2014)
``mingru``         minGRU (Feng et al. 2024): gates from x only, h = (1 - z) h + z g(.)   numpy; associative = sequential
``minlstm``        minLSTM (Feng et al. 2024): normalised f', i' from x only              numpy; associative = sequential
=================  =====================================================================  ==========================

``mingru`` and ``minlstm`` set ``Cell.linear``: under teacher forcing ``unroll.py`` runs them with
``jax.lax.associative_scan`` over time; ``cell.step`` (generation, scheduled sampling) is the same
function one step at a time.
"""
from __future__ import annotations

from .. import RnnlabError
from .base import Cell, HiddenCarry, LSTMCarry
from .gru import make_gru, make_gru_cho
from .lstm import make_lstm
from .lstm_peephole import make_lstm_peephole
from .minimal import make_mingru, make_minlstm
from .rnn import make_rnn

CELLS = {
    "rnn": lambda: make_rnn("tanh"),
    "rnn_relu": lambda: make_rnn("relu"),
    "gru": make_gru,
    "gru_cho": make_gru_cho,
    "lstm": make_lstm,
    "lstm_peephole": make_lstm_peephole,
    "mingru": make_mingru,
    "minlstm": make_minlstm,
}
# options a model passes to every cell; a cell takes the ones it knows (only the LSTMs have a forget gate bias option)
CELL_OPTIONS = {"lstm": ("forget_bias",), "lstm_peephole": ("forget_bias",)}


def get_cell(name: str, **options) -> Cell:
    """The cell called ``name``; options (e.g. ``forget_bias`` for the LSTMs) go to its factory."""
    if name not in CELLS:
        raise RnnlabError(f"unknown cell {name!r}; valid cells: {', '.join(sorted(CELLS))}")
    known = CELL_OPTIONS.get(name, ())
    bad = [k for k in options if k not in ("forget_bias",)]
    if bad:
        raise RnnlabError(f"unknown cell option(s) {', '.join(bad)}; known: forget_bias (lstm, lstm_peephole)")
    return CELLS[name](**{k: v for k, v in options.items() if k in known})


__all__ = ["Cell", "HiddenCarry", "LSTMCarry", "CELLS", "get_cell"]
