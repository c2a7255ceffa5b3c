"""The dataset registry: ``DATASETS`` name -> Dataset(load, levels, description, files).

``load_corpus`` returns a record whose ``kind`` the training code dispatches on: token streams
(``Corpus``), ``"frames"`` (``music.FrameCorpus``), ``"transduction"``
(``transduction.TransductionCorpus``) and ``"pairs"`` (``pairs.PairCorpus``).
"""
from __future__ import annotations

from .. import RnnlabError
from .corpus import Corpus, Dataset, cfg_get, data_section
from .music import MUSIC_FILES, music_loader
from .pairs import FRA_MEMBER, FRA_REL, FRA_SOURCE, load_fra_eng, pair_task_loader
from .reber import load_reber
from .text import (TEXT_FILES, load_ptb, load_ptb_char, load_text, load_timemachine, load_tinyshakespeare)
from .transduction import transduction_loader


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
    # polyphonic music (data/music.py): FrameCorpus, pieces [T_i, 88] of 0/1, next-frame prediction
    "jsb_chorales": Dataset(music_loader("jsb_chorales"), ("frame",),
                            "JSB Chorales piano rolls, 88 keys, 229/76/77 pieces (Boulanger-Lewandowski 2012)",
                            MUSIC_FILES["jsb_chorales"]),
    "nottingham": Dataset(music_loader("nottingham"), ("frame",),
                          "Nottingham folk tunes piano rolls, 88 keys, 694/173/170 pieces", MUSIC_FILES["nottingham"]),
    "musedata": Dataset(music_loader("musedata"), ("frame",),
                        "MuseData piano rolls, 88 keys, 524/135/124 pieces", MUSIC_FILES["musedata"]),
    "piano_midi": Dataset(music_loader("piano_midi"), ("frame",),
                          "Piano-midi.de piano rolls, 88 keys, 87/12/25 pieces", MUSIC_FILES["piano_midi"]),
    # transduction tasks (data/transduction.py): TransductionCorpus, a target at every step (data.task.*)
    "running_parity": Dataset(transduction_loader("running_parity"), ("token",),
                              "bits in, y_t = parity of x_1..x_t; test strings longer than train's", {}),
    "running_count": Dataset(transduction_loader("running_count"), ("token",),
                             "cycle navigation: y_t = (moves so far) mod data.task.modulus", {}),
    "running_majority": Dataset(transduction_loader("running_majority"), ("token",),
                                "bits in, y_t = 1 if ones outnumber zeros so far (ties 0)", {}),
    # source-target pairs (data/pairs.py): PairCorpus for seq2seq
    "copy": Dataset(pair_task_loader("copy"), ("char",), "seq2seq: target = source (symbols a, b, ...)", {}),
    "reverse": Dataset(pair_task_loader("reverse"), ("char",), "seq2seq: target = source reversed", {}),
    "sort": Dataset(pair_task_loader("sort"), ("char",), "seq2seq: target = source's symbols in ascending order", {}),
    "addition": Dataset(pair_task_loader("addition"), ("char",), "seq2seq: '123+45' -> '168', lengths in digits", {}),
    "fra_eng": Dataset(load_fra_eng, ("word",),
                       "English -> French sentence pairs (d2l / Tatoeba), <= data.task.max_tokens words, split "
                       "90/5/5 by source", {FRA_REL: FRA_SOURCE + (FRA_MEMBER,)}),  # (zip URL, SHA-256 of the member, member)
}


def get_dataset(name: str) -> Dataset:
    """The registry entry for ``name``; RnnlabError listing the valid names otherwise."""
    if name not in DATASETS:
        raise RnnlabError(f"data.name={name!r} is not a dataset; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def load_corpus(cfg):
    """Load the corpus that ``cfg`` (the ``data`` section, or a whole config) names: a ``Corpus``,
    ``FrameCorpus``, ``TransductionCorpus`` or ``PairCorpus`` (see the module docstring).

    Reads ``name``, ``dir``, ``level``, ``path``, ``num_train``/``num_valid``/``num_test``, ``seed``,
    ``task`` with defaults when a field is missing.
    """
    cfg = data_section(cfg)
    name = str(cfg_get(cfg, "name", ""))
    ds = get_dataset(name)
    level = str(cfg_get(cfg, "level", ""))
    if level and level not in ds.levels:
        raise RnnlabError(f"data.level={level!r} is not valid for data.name={name!r}; allowed: '' "
                          f"(default {ds.levels[0]}), {', '.join(ds.levels)}")
    return ds.load(cfg, level)
