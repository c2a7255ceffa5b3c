"""Vocabularies: token <-> id maps at word or character level (numpy only)."""
from __future__ import annotations

import collections
import dataclasses
from typing import Callable

import numpy as np

from .. import RnnlabError

UNK = "<unk>"
EOS = "<eos>"
LEVELS = ("word", "char")


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

