"""Source-target pairs for sequence to sequence models: synthetic tasks with exact answers and
d2l's English-French sentence pairs (numpy only).

``data.name``:

* ``copy``, ``reverse``, ``sort``: a source of S symbols ``a, b, c, ...`` (``data.task.vocab`` of
  them, 2..26, default 10) drawn uniformly; the target is the source (copy), the source backwards
  (reverse), or its symbols in ascending order (sort). Character level.
* ``addition``: two non-negative integers as decimal digit strings, ``"123+45"`` -> ``"168"``; each
  operand has a number of digits uniform in the split's length range (its first digit is not 0
  unless it has one digit), the target is the sum without leading zeros. Character level, symbols
  ``0..9`` and ``+``.

  The synthetic tasks take their lengths and sizes from ``data.task`` (``min_len..max_len`` for
  train and valid, ``test_min_len..test_max_len`` for test: length generalisation; ``num_*``
  pairs per split); split k in (train, valid, test) = (0, 1, 2) draws from
  ``np.random.default_rng([data.seed, k])``.
* ``fra_eng``: ``<data dir>/fra_eng/fra.txt``, lines ``English<TAB>French`` (further tab-separated
  columns, such as newer manythings.org files' attribution, are ignored), source English, target
  French. d2l's ``preprocess_nmt``: U+202F and U+00A0 become spaces, lowercase, ``, . ! ?`` split
  off as words; tokens are whitespace words (d2l's ``tokenize_nmt`` splits on single spaces, which
  gives empty tokens on the 17 French sides with a double space; here they are not tokens). Pairs
  whose source and target both have at most ``data.task.max_tokens`` words (10) are kept
  (140,658 of the 167,130; 97,423 distinct English sentences). The distinct English sentences are shuffled with
  ``np.random.default_rng([data.seed])`` and split 90 / 5 / 5 % (``SPLIT_FRACTIONS``); every pair
  follows its source, so no English sentence is in two splits. Vocabularies (source and target
  apart) are built from train: the words seen at least twice (d2l's ``min_freq=2``), by
  descending frequency, after the specials; other words map to ``<unk>``.

Every vocab starts with the specials ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3.
Pairs hold ids without ``<bos>``/``<eos>``; ``pair_batches`` adds them.

Shapes: N batches, B batch, S source length, T target length + 1 (the added <bos> or <eos>).
"""
from __future__ import annotations

import collections
import dataclasses
import re
from typing import NamedTuple

import numpy as np

from .. import RnnlabError
from .corpus import cfg_get
from .files import locate, read_text
from .padded import SequenceSplits
from .text import SPLIT_FRACTIONS, split_sizes
from .transduction import SPLITS, split_plan, task_settings
from .vocab import EOS, UNK, Vocab

PAD, BOS = "<pad>", "<bos>"
SPECIALS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3
PAIR_TASKS = ("copy", "reverse", "sort", "addition")

FRA_REL = "fra_eng/fra.txt"
# d2l's DATA_HUB['fra-eng'] zip and its member (the zip's own SHA-256 is unknown; the member's is checked)
FRA_SOURCE = ("http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip",
              "0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104")
FRA_MEMBER = "fra-eng/fra.txt"


@dataclasses.dataclass
class PairCorpus(SequenceSplits):
    """Source-target pairs.

    train, valid, test: lists of (source ids [S_i] int32, target ids [T_i] int32), without <bos>/<eos>.
    src_vocab, tgt_vocab: Vocabs with ``SPECIALS`` first (<pad> = 0).
    meta: settings, seed, and ``{split}_pairs`` / ``{split}_targets`` (sum_i (T_i + 1): the scored
    tokens, each target's <eos> included).
    """

    name: str
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: list[tuple[np.ndarray, np.ndarray]]
    valid: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray]]
    meta: dict = dataclasses.field(default_factory=dict)
    kind: str = "pairs"
    level: str = "char"

    @property
    def vocab(self) -> Vocab:
        """The target vocab (what the model's output distribution ranges over)."""
        return self.tgt_vocab


class PairBatches(NamedTuple):
    """Pairs padded into N batches of B.

    src: [N, B, S] int32, padded with 0 (<pad>).
    src_len: [N, B] int32: S_i (0 for the empty rows that fill the last batch).
    tgt_in: [N, B, T] int32: <bos> + target, padded with 0 (the decoder's inputs under teacher forcing).
    tgt_out: [N, B, T] int32: target + <eos>, padded with 0 (what the decoder predicts).
    mask: [N, B, T] float32: 1 on the T_i + 1 real positions of tgt_out (the <eos> included), else 0.
    """

    src: np.ndarray
    src_len: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    mask: np.ndarray


def pair_batches(pairs: list, batch_size: int, bos: int, eos: int, *, max_src: int | None = None,
                 max_tgt: int | None = None) -> PairBatches:
    """(source [S_i], target [T_i]) pairs -> PairBatches of N = ceil(len(pairs) / B) batches, in order.

    S = ``max_src`` and T = ``max_tgt`` + 1 when given (so that several splits share shapes; a longer
    pair is an error), else the longest source and the longest target + 1 of ``pairs``.
    """
    b = int(batch_size)
    if b < 1:
        raise RnnlabError(f"batch_size={batch_size!r} is not valid; it must be >= 1")
    if not pairs:
        raise RnnlabError("no pairs to batch; give at least one (source, target) pair")
    srcs = [np.asarray(s, np.int32).reshape(-1) for s, _ in pairs]
    tgts = [np.asarray(t, np.int32).reshape(-1) for _, t in pairs]
    if min(s.size for s in srcs) == 0:
        i = next(i for i, s in enumerate(srcs) if s.size == 0)
        raise RnnlabError(f"pair {i} has an empty source; every source needs at least one token")
    longest_s, longest_t = max(s.size for s in srcs), max(t.size for t in tgts)
    s_len = longest_s if max_src is None else int(max_src)
    t_len = longest_t if max_tgt is None else int(max_tgt)
    if longest_s > s_len or longest_t > t_len:
        raise RnnlabError(f"pairs have sources up to {longest_s} and targets up to {longest_t} tokens, above "
                          f"max_src={max_src} / max_tgt={max_tgt}; raise them or filter the pairs")
    n = -(-len(pairs) // b)
    src = np.zeros((n * b, s_len), np.int32)
    src_len = np.zeros(n * b, np.int32)
    tgt_in = np.zeros((n * b, t_len + 1), np.int32)
    tgt_out = np.zeros((n * b, t_len + 1), np.int32)
    mask = np.zeros((n * b, t_len + 1), np.float32)
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        src[i, : s.size] = s
        src_len[i] = s.size
        tgt_in[i, 0], tgt_in[i, 1: t.size + 1] = bos, t
        tgt_out[i, : t.size], tgt_out[i, t.size] = t, eos
        mask[i, : t.size + 1] = 1.0
    return PairBatches(src.reshape(n, b, s_len), src_len.reshape(n, b), tgt_in.reshape(n, b, t_len + 1),
                       tgt_out.reshape(n, b, t_len + 1), mask.reshape(n, b, t_len + 1))


def detokenize(vocab: Vocab, ids) -> str:
    """ids [L] -> text for BLEU: stops at the first <eos>, drops <pad> and <bos>; words are joined by
    spaces with no space before ``, . ! ?`` (undoing the preprocessing), characters by ''."""
    special = {vocab.stoi.get(PAD), vocab.stoi.get(BOS)}
    eos = vocab.stoi.get(EOS)
    toks = []
    for i in np.asarray(ids).reshape(-1).tolist():
        if i == eos:
            break
        if i not in special:
            toks.append(vocab.itos[i])
    if vocab.level == "char":
        return "".join(toks)
    return re.sub(r" ([,.!?])", r"\1", " ".join(toks))


# ----------------------------------------------------------------------------------------------
# Synthetic tasks
# ----------------------------------------------------------------------------------------------


def symbol_vocab(symbols) -> Vocab:
    """Character vocab: SPECIALS, then ``symbols`` in the given order."""
    return Vocab(itos=list(SPECIALS) + list(symbols), level="char")


def task_answer(name: str, source: str) -> str:
    """The exact target of synthetic task ``name`` for the source string ``source``."""
    if name == "copy":
        return source
    if name == "reverse":
        return source[::-1]
    if name == "sort":
        return "".join(sorted(source))
    if name == "addition":
        a, b = source.split("+")
        return str(int(a) + int(b))
    raise RnnlabError(f"pair task {name!r} is not known; allowed: {', '.join(PAIR_TASKS)}")


def _number(rng: np.random.Generator, digits: int) -> str:
    """A decimal string of ``digits`` digits, first digit not 0 unless ``digits`` is 1."""
    first = rng.integers(0 if digits == 1 else 1, 10)
    return str(first) + "".join(map(str, rng.integers(0, 10, size=digits - 1)))


def _sources(name: str, rng: np.random.Generator, n: int, lo: int, hi: int, symbols: str) -> list[str]:
    """n source strings of task ``name`` with lengths (addition: digits per operand) in lo..hi."""
    if name == "addition":
        digits = rng.integers(lo, hi + 1, size=(n, 2))
        return [_number(rng, int(da)) + "+" + _number(rng, int(db)) for da, db in digits]
    alphabet = np.array(list(symbols))
    return ["".join(alphabet[rng.integers(0, len(symbols), size=int(k))]) for k in rng.integers(lo, hi + 1, size=n)]


def load_pair_task(cfg, name: str) -> PairCorpus:
    """The PairCorpus of synthetic task ``name`` (copy, reverse, sort, addition); see the module docstring."""
    s = task_settings(cfg)
    if name == "addition":
        symbols = "0123456789+"
    else:
        k = s["vocab"] or 10
        if not 2 <= k <= 26:
            raise RnnlabError(f"data.task.vocab={s['vocab']} is not valid for {name}; allowed: 0 (10 symbols) "
                              f"or 2..26 symbols a, b, c, ...")
        symbols = "abcdefghijklmnopqrstuvwxyz"[:k]
    vocab = symbol_vocab(symbols)
    seed = int(cfg_get(cfg, "seed", 0))
    meta = {"seed": seed, "symbols": symbols, **{k: s[k] for k in ("min_len", "max_len", "test_min_len",
                                                                    "test_max_len")}}
    splits = {}
    for k, (split, (n, lo, hi)) in enumerate(split_plan(s).items()):
        sources = _sources(name, np.random.default_rng([seed, k]), n, lo, hi, symbols)
        targets = [task_answer(name, x) for x in sources]
        splits[split] = list(zip(encode_sentences(vocab, sources), encode_sentences(vocab, targets)))
    _count(meta, splits)
    return PairCorpus(name=name, src_vocab=vocab, tgt_vocab=vocab, meta=meta, level="char", **splits)


def _count(meta: dict, splits: dict) -> None:
    for split, pairs in splits.items():
        meta[f"{split}_pairs"] = len(pairs)
        meta[f"{split}_targets"] = int(sum(t.size + 1 for _, t in pairs))


# ----------------------------------------------------------------------------------------------
# English-French (d2l)
# ----------------------------------------------------------------------------------------------


def preprocess_nmt(text: str) -> str:
    """d2l's preprocess_nmt up to whitespace: U+202F / U+00A0 -> ' ', lowercase, ' ' before , . ! ?
    (d2l adds that space only after a non-space; here it is added everywhere, so the whitespace words
    are the same and the text may hold a few more spaces)."""
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    for p in ",.!?":
        text = text.replace(p, " " + p)
    return text


def read_pairs(text: str, where: str = "pair file") -> list[tuple[list[str], list[str]]]:
    """Lines ``source<TAB>target[<TAB>...]`` -> [(source words, target words)] after ``preprocess_nmt``.
    RnnlabError naming the line (1-based) for a line without a tab or with an empty side."""
    raw = text.split("\n")
    lines = preprocess_nmt(text).split("\n")  # the same lines: preprocessing adds no newline
    if lines and lines[-1] == "":
        lines = lines[:-1]
    out = []
    for i, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) < 2:
            raise RnnlabError(f"{where} line {i} has no tab ({raw[i - 1][:40]!r}); each line must be "
                              f"source<TAB>target")
        src, tgt = parts[0].split(), parts[1].split()
        if not src or not tgt:
            side = "source" if not src else "target"
            raise RnnlabError(f"{where} line {i} has an empty {side} ({raw[i - 1][:40]!r}); each line needs "
                              f"words on both sides of the tab")
        out.append((src, tgt))
    return out


def encode_sentences(vocab: Vocab, sentences: list) -> list[np.ndarray]:
    """Sentences (lists of tokens; strings at char level) -> int32 ids [len(sentence)] each, encoded in
    one pass (unknown tokens -> <unk>)."""
    ids = vocab.encode_tokens([w for s in sentences for w in s])
    return np.split(ids, np.cumsum([len(s) for s in sentences])[:-1]) if sentences else []


def word_vocab(sentences, min_freq: int = 2) -> Vocab:
    """Word vocab of ``sentences`` (lists of words): SPECIALS, then the words seen >= ``min_freq``
    times by descending frequency (ties by word), as d2l's Vocab."""
    words = [w for s in sentences for w in s]
    counts = collections.Counter(words)
    full = Vocab.build(words, "word", specials=SPECIALS)
    return Vocab(itos=[w for w in full.itos if w in SPECIALS or counts[w] >= min_freq], level="word")


def split_by_source(pairs: list, seed: int) -> dict[str, list]:
    """Pairs -> {train, valid, test}: the distinct sources (first-appearance order) permuted with
    ``np.random.default_rng([seed])`` and cut ``SPLIT_FRACTIONS`` (90/5/5); each pair goes where its
    source went, in file order."""
    index: dict[tuple, int] = {}
    ids = [index.setdefault(tuple(s), len(index)) for s, _ in pairs]
    perm = np.random.default_rng([int(seed)]).permutation(len(index))
    n_train, n_valid, _ = split_sizes(len(index))
    where = np.empty(len(index), np.int64)
    where[perm[:n_train]], where[perm[n_train: n_train + n_valid]], where[perm[n_train + n_valid:]] = 0, 1, 2
    out: dict[str, list] = {s: [] for s in SPLITS}
    for pair, i in zip(pairs, ids):
        out[SPLITS[where[i]]].append(pair)
    return out


def load_fra_eng(cfg, level: str = "") -> PairCorpus:
    """d2l's English -> French pairs, filtered by length, split by source, vocabularies from train."""
    s = task_settings(cfg)
    seed = int(cfg_get(cfg, "seed", 0))
    path = locate(cfg, FRA_REL, FRA_SOURCE, member=FRA_MEMBER)
    pairs = read_pairs(read_text(path), str(path))
    kept = [p for p in pairs if len(p[0]) <= s["max_tokens"] and len(p[1]) <= s["max_tokens"]]
    if not kept:
        raise RnnlabError(f"no pair of {path} has both sides within data.task.max_tokens={s['max_tokens']} "
                          f"words; raise it")
    words = split_by_source(kept, seed)
    if not all(words.values()):
        raise RnnlabError(f"{path} has only {len(kept)} pairs within data.task.max_tokens={s['max_tokens']} words, "
                          f"too few for a train / valid / test split by source; give at least 20 distinct sources")
    src_vocab = word_vocab(src for src, _ in words["train"])
    tgt_vocab = word_vocab(tgt for _, tgt in words["train"])
    splits = {k: list(zip(encode_sentences(src_vocab, [a for a, _ in v]), encode_sentences(tgt_vocab, [b for _, b in v])))
              for k, v in words.items()}
    meta = {"files": [str(path)], "seed": seed, "max_tokens": s["max_tokens"], "split": list(SPLIT_FRACTIONS),
            "pairs_read": len(pairs), "pairs_kept": len(kept), "src_vocab_size": src_vocab.size,
            "tgt_vocab_size": tgt_vocab.size}
    _count(meta, splits)
    return PairCorpus(name="fra_eng", src_vocab=src_vocab, tgt_vocab=tgt_vocab, meta=meta, level="word", **splits)


def pair_task_loader(name: str):
    """A registry loader ``(data_cfg, level) -> PairCorpus`` for synthetic task ``name``."""
    return lambda cfg, level: load_pair_task(cfg, name)
