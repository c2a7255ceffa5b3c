"""rnnlab: compare recurrent cells (tanh RNN, GRU, LSTM) and training modes on exact perplexity."""

__version__ = "0.1.0"


class RnnlabError(Exception):
    """A user-facing error: the CLIs print its one-line message and exit non-zero."""
