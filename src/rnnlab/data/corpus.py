"""The corpus record, the registry entry type, and reading a data config's fields (numpy only)."""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import numpy as np

from .. import RnnlabError
from .vocab import Vocab


@dataclasses.dataclass
class Corpus:
    """A tokenized corpus: ``train``, ``valid``, ``test`` are int32 ids [N_split].

    ``meta`` holds facts about the source: the files read, and for synthetic sources the optimum
    (``optimal_ppl``, ``entropy_rate_nats``, ``entropy_rate_bits``, ``optimal_bpc``).
    """

    name: str
    level: str
    vocab: Vocab
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def split(self, name: str) -> np.ndarray:
        """The ids of split ``name`` (train, valid or test)."""
        if name not in ("train", "valid", "test"):
            raise RnnlabError(f"split {name!r} is not valid; allowed: train, valid, test")
        return getattr(self, name)

    def summary(self) -> dict:
        """Token counts and vocab size, for logs."""
        return {"name": self.name, "level": self.level, "vocab_size": self.vocab.size,
                "train_tokens": int(self.train.size), "valid_tokens": int(self.valid.size),
                "test_tokens": int(self.test.size)}


class Dataset(NamedTuple):
    """A registry entry: ``load(data_cfg, level) -> Corpus``; ``levels[0]`` is the default level;
    ``files`` maps a path inside the data folder to its (public URL, SHA-256)."""

    load: Callable
    levels: tuple[str, ...]
    description: str
    files: dict


def cfg_get(cfg, name: str, default):
    value = getattr(cfg, name, default)
    return default if value is None else value


def data_section(cfg):
    """Accept the data section (has ``name``) or a whole config (has ``data``)."""
    if getattr(cfg, "name", None) is None and getattr(cfg, "data", None) is not None:
        return cfg.data
    return cfg
