"""The dataset registry: ``DATASETS`` name -> Dataset(load, levels, description, files)."""
from __future__ import annotations

from .. import RnnlabError
from .corpus import Corpus, Dataset, cfg_get, data_section
from .reber import load_reber
from .text import (TEXT_FILES, load_ptb, load_ptb_char, load_text, load_timemachine, load_tinyshakespeare)
from .vocab import LEVELS


def _load_oracle(cfg, level: str) -> Corpus:
    from .oracle import load_oracle_corpus  # jax and the model live there; the other loaders stay numpy-only

    return load_oracle_corpus(cfg, level)


DATASETS: dict[str, Dataset] = {
    "ptb": Dataset(load_ptb, ("word",), "Penn Treebank, word level, vocab 10,000 (Mikolov / Zaremba)", TEXT_FILES["ptb"]),
    "ptb_char": Dataset(load_ptb_char, ("char",), "Penn Treebank, character level, vocab 50 (Mikolov)", TEXT_FILES["ptb_char"]),
    "tinyshakespeare": Dataset(load_tinyshakespeare, ("char",), "Tiny Shakespeare, 65 characters, split 90/5/5", TEXT_FILES["tinyshakespeare"]),
    "timemachine": Dataset(load_timemachine, ("char", "word"), "The Time Machine, d2l preprocessing, split 90/5/5", TEXT_FILES["timemachine"]),
    "text": Dataset(load_text, ("char", "word"),
                    "any UTF-8 text at data.path: a file (split 90/5/5, default char) or a folder with "
                    "train/valid/test files (default word)", {}),
    "reber": Dataset(load_reber, ("char",), "embedded Reber grammar stream, 7 symbols, exact entropy rate", {}),
    "oracle": Dataset(lambda cfg, level: _load_oracle(cfg, level), ("word",),
                      "streams of a fixed random LSTM LM (SeqGAN oracle), entropy rate estimated (data.oracle.*)", {}),
}


def get_dataset(name: str) -> Dataset:
    """The registry entry for ``name``; RnnlabError listing the valid names otherwise."""
    if name not in DATASETS:
        raise RnnlabError(f"data.name={name!r} is not a dataset; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def load_corpus(cfg) -> Corpus:
    """Load the corpus that ``cfg`` (the ``data`` section, or a whole config) names.

    Reads ``name``, ``dir``, ``level``, ``path``, ``num_train``/``num_valid``/``num_test``, ``seed``
    with defaults when a field is missing.
    """
    cfg = data_section(cfg)
    name = str(cfg_get(cfg, "name", ""))
    ds = get_dataset(name)
    level = str(cfg_get(cfg, "level", ""))
    if level and (level not in LEVELS or level not in ds.levels):
        raise RnnlabError(f"data.level={level!r} is not valid for data.name={name!r}; allowed: '' "
                          f"(default {ds.levels[0]}), {', '.join(ds.levels)}")
    return ds.load(cfg, level)
