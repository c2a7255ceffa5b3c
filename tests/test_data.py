"""Tests of rnnlab.data: corpus counts against ../shared/data/README.md, the text loader, errors,
the embedded Reber source's entropy rate, and TBPTT batching. Nothing here downloads."""
from __future__ import annotations

import hashlib
import math
import os
import types
from pathlib import Path

import numpy as np
import pytest

from rnnlab import RnnlabError, data

from _offline import no_download  # noqa: F401  (autouse: any download fails, the cache is empty)

REAL_FETCH = data.files._fetch  # saved before the autouse fixture replaces it
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The real corpora (conftest's RNNLAB_DATA_DIR, else ../shared/data); skip when absent."""
    path = Path(os.environ.get("RNNLAB_DATA_DIR") or SHARED)
    if not (path / "ptb").is_dir():
        pytest.skip(f"no corpus folder at {path}")
    return path


def cfg(**kw):
    return types.SimpleNamespace(**kw)


_CACHE: dict = {}


def load(name, level="", **kw):
    """Corpora are read once per test session (they are immutable arrays for these tests)."""
    key = (name, level, tuple(sorted(kw.items())))
    if key not in _CACHE:
        _CACHE[key] = data.load_corpus(cfg(name=name, level=level, **kw))
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------
# Real corpora: counts from ../shared/data/README.md
# ------------------------------------------------------------------------------------------------


def test_ptb_counts(corpora_dir):
    c = load("ptb", dir=str(corpora_dir))
    assert (c.train.size, c.valid.size, c.test.size) == (929_589, 73_760, 82_430)
    assert c.vocab.size == 10_000 and c.level == "word" and c.vocab.unk == "<unk>"
    assert c.train.dtype == np.int32 and c.train.ndim == 1
    eos = c.vocab.stoi["<eos>"]
    assert [(s == eos).sum() for s in (c.train, c.valid, c.test)] == [42_068, 3_370, 3_761]
    assert [(s == c.vocab.stoi["<unk>"]).sum() for s in (c.train, c.valid, c.test)] == [45_020, 3_485, 4_794]
    first_valid = "consumers may want to move their telephones a little closer to the tv set <eos>"
    assert c.vocab.decode(c.valid[:15]) == first_valid


def test_ptb_char_counts(corpora_dir):
    c = load("ptb_char", dir=str(corpora_dir))
    assert (c.train.size, c.valid.size, c.test.size) == (5_017_482, 393_042, 442_423)
    assert c.vocab.size == 50 and c.level == "char" and "\n" in c.vocab.stoi
    assert (c.train == c.vocab.stoi["\n"]).sum() == 42_068
    assert c.vocab.decode(c.train[:14]) == "aer_banknote_b"
    assert c.vocab.decode(c.valid[:14]) == "consumers_may_"
    assert np.unique(c.test).size == 48


def test_tinyshakespeare(corpora_dir):
    c = load("tinyshakespeare", dir=str(corpora_dir))
    assert c.vocab.size == 65
    assert c.train.size + c.valid.size + c.test.size == 1_115_394
    assert (c.train.size, c.valid.size, c.test.size) == (1_003_854, 55_769, 55_771)
    assert c.vocab.decode(c.train[:14]) == "First Citizen:"
    text = (corpora_dir / "tinyshakespeare" / "input.txt").read_text()
    assert c.vocab.decode(c.test[-10:]) == text[-10:]


def test_timemachine_d2l_preprocessing(corpora_dir):
    # d2l's load_corpus_time_machine: per line [^A-Za-z]+ -> ' ', strip, lower; lines concatenated
    ch = load("timemachine", dir=str(corpora_dir))
    assert ch.train.size + ch.valid.size + ch.test.size == 170_580
    assert ch.vocab.size == 28 and ch.vocab.itos[0] == "<unk>" and ch.level == "char"
    assert set(ch.vocab.itos[1:]) == set("abcdefghijklmnopqrstuvwxyz ")
    assert ch.vocab.decode(ch.train[:20]) == "the time machine by "
    wd = load("timemachine", "word", dir=str(corpora_dir))
    assert wd.train.size + wd.valid.size + wd.test.size == 32_775
    assert wd.vocab.size == 4_580  # 4,579 word types + <unk>
    assert wd.vocab.decode(wd.train[:5]) == "the time machine by h"


def test_data_dir_from_env(corpora_dir, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(corpora_dir))
    c = data.load_corpus(cfg(name="timemachine"))  # no dir field at all
    assert c.vocab.size == 28


def test_whole_config_is_accepted(corpora_dir):
    whole = cfg(data=cfg(name="timemachine", dir=str(corpora_dir), level="word"), train=cfg(seed=0))
    assert data.load_corpus(whole).level == "word"


# ------------------------------------------------------------------------------------------------
# Vocab
# ------------------------------------------------------------------------------------------------


def test_vocab_encode_decode_json():
    v = data.Vocab(itos=["<unk>", "<eos>", "a", "b"], level="word")
    assert v.unk == "<unk>" and v.size == 4
    ids = v.encode("a b\nc a")
    assert ids.dtype == np.int32 and ids.tolist() == [2, 3, 1, 0, 2]
    assert v.decode(ids) == "a b <eos> <unk> a"
    assert v.encode("a c", unknown="drop").tolist() == [2]
    assert v.missing("a c d c") == ["c", "d"]
    with pytest.raises(RnnlabError, match="not in the vocab.*'c'"):
        v.encode("a c", unknown="error")
    assert data.Vocab.from_json(v.to_json()) == v

    c = data.Vocab(itos=list("ab "), level="char")
    assert c.unk is None and c.decode(c.encode("ab ba")) == "ab ba"
    with pytest.raises(RnnlabError, match="no <unk>"):
        c.encode("abc")
    assert c.missing("abcdc") == ["c", "d"]
    with pytest.raises(RnnlabError, match="unknown='x'.*unk, error, drop"):
        c.encode("zz", unknown="x")
    with pytest.raises(RnnlabError, match="duplicate"):
        data.Vocab(itos=["a", "a"], level="char")


# ------------------------------------------------------------------------------------------------
# The text loader
# ------------------------------------------------------------------------------------------------


def test_text_single_file_char_default(tmp_path):
    text = "".join(f"line {i} of some text\n" for i in range(100))
    (tmp_path / "a.txt").write_text(text)
    c = data.load_corpus(cfg(name="text", path=str(tmp_path / "a.txt"), level=""))
    assert c.level == "char"
    n = len(text)
    assert (c.train.size, c.valid.size, c.test.size) == data.split_sizes(n) == (int(0.9 * n), int(0.05 * n),
                                                                                 n - int(0.9 * n) - int(0.05 * n))
    assert c.vocab.decode(np.concatenate([c.train, c.valid, c.test])) == text
    w = data.load_corpus(cfg(name="text", path=str(tmp_path / "a.txt"), level="word"))
    assert w.train.size + w.valid.size + w.test.size == 100 * 6  # 5 words + <eos> per line


def test_text_folder_word_default_with_unk(tmp_path):
    (tmp_path / "my.train.txt").write_text("the cat sat\nthe dog sat\n")
    (tmp_path / "my.val.txt").write_text("the bird sat\n")
    (tmp_path / "my.test.txt").write_text("a cat\nthe cat")  # no final newline: still one <eos>
    c = data.load_corpus(cfg(name="text", path=str(tmp_path)))
    assert c.level == "word" and c.vocab.unk == "<unk>"
    assert set(c.vocab.itos) == {"the", "cat", "sat", "dog", "<eos>", "<unk>"}
    assert c.train.size == 8
    assert c.vocab.decode(c.valid) == "the <unk> sat <eos>"
    assert c.vocab.decode(c.test) == "<unk> cat <eos> the cat <eos>"
    ch = data.load_corpus(cfg(name="text", path=str(tmp_path), level="char"))
    assert ch.vocab.unk == "<unk>"  # 'b', 'i', 'r' of "bird" are not in train
    assert ch.vocab.decode(ch.valid) == "the <unk><unk><unk>d sat\n"


def test_text_folder_matches_ptb(corpora_dir):
    c = data.load_corpus(cfg(name="text", path=str(corpora_dir / "ptb")))
    assert (c.train.size, c.valid.size, c.test.size, c.vocab.size) == (929_589, 73_760, 82_430, 10_000)


# ------------------------------------------------------------------------------------------------
# Errors: RnnlabError, one line, naming the value and what is allowed
# ------------------------------------------------------------------------------------------------


def _one_line(exc_info):
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


def test_unknown_dataset():
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="wikitext9"))
    msg = _one_line(e)
    assert "'wikitext9'" in msg and "allowed: " + ", ".join(sorted(data.DATASETS)) in msg
    assert all(n in msg for n in ("ptb", "ptb_char", "reber", "text", "timemachine", "tinyshakespeare"))
    with pytest.raises(RnnlabError, match="allowed"):
        data.get_dataset("")


def test_unknown_level(corpora_dir):
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="timemachine", level="byte", dir=str(corpora_dir)))
    assert "'byte'" in _one_line(e) and "char, word" in str(e.value)
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="ptb", level="char", dir=str(corpora_dir)))
    assert "allowed" in _one_line(e) and "word" in str(e.value)


def test_missing_file_names_path_and_remedies(tmp_path):
    (tmp_path / "ptb").mkdir()
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="ptb", dir=str(tmp_path)))
    msg = _one_line(e)
    assert str(tmp_path / "ptb" / "ptb.train.txt") in msg
    assert "data.dir" in msg and "RNNLAB_DATA_DIR" in msg and "download" in msg
    with pytest.raises(RnnlabError, match="not a folder"):
        data.load_corpus(cfg(name="ptb", dir=str(tmp_path / "nope")))


def test_missing_file_in_cache_tries_download_and_fails_cleanly(monkeypatch):
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="tinyshakespeare", dir=""))
    msg = _one_line(e)
    assert "could not download" in msg and "karpathy/char-rnn" in msg and "RNNLAB_DATA_DIR" in msg
    assert not list(data.cache_dir().rglob("*.txt*"))


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"  \n\n ", "empty"),
    (b"abc\x00\x01\x02def", "binary"),
    (b"caf\xe9 au lait\n" * 10, "not UTF-8"),
])
def test_bad_text_files(tmp_path, content, words):
    f = tmp_path / "x.txt"
    f.write_bytes(content)
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="text", path=str(f)))
    msg = _one_line(e)
    assert words in msg and str(f) in msg


def test_text_path_errors(tmp_path):
    with pytest.raises(RnnlabError, match="data.path is empty"):
        data.load_corpus(cfg(name="text", path=""))
    with pytest.raises(RnnlabError, match="does not exist"):
        data.load_corpus(cfg(name="text", path=str(tmp_path / "missing.txt")))
    (tmp_path / "train.txt").write_text("a b\n")
    (tmp_path / "notes.md").write_text("c d\n")
    with pytest.raises(RnnlabError) as e:
        data.load_corpus(cfg(name="text", path=str(tmp_path)))
    msg = _one_line(e)
    assert "without valid/test files" in msg and "'train', 'valid' (or 'val') and 'test'" in msg
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(RnnlabError, match="too few to split"):
        data.load_corpus(cfg(name="text", path=str(tmp_path / "short.txt")))


def test_download_checksum(tmp_path, monkeypatch):
    src = tmp_path / "src.txt"
    src.write_text("hello corpus\n")
    good = hashlib.sha256(src.read_bytes()).hexdigest()

    monkeypatch.setattr(data.files, "_fetch", REAL_FETCH)  # a local file:// URL through the real urllib path
    dest = tmp_path / "dl" / "a.txt"
    with pytest.raises(RnnlabError) as e:
        data.download(src.as_uri(), dest, "0" * 64)
    msg = _one_line(e)
    assert good in msg and "0" * 64 in msg and "deleted" in msg
    assert not dest.exists() and not list(dest.parent.iterdir())
    assert data.download(src.as_uri(), dest, good).read_text() == "hello corpus\n"


# ------------------------------------------------------------------------------------------------
# Embedded Reber grammar
# ------------------------------------------------------------------------------------------------


def test_reber_entropy_rate_analytic():
    r = data.reber_entropy_rate()
    # 7 bits (outer T/P + 6 expected inner choices) per 12 expected symbols, B and E included
    assert r["bits_per_string"] == pytest.approx(7.0, rel=1e-9)
    assert r["symbols_per_string"] == pytest.approx(12.0, rel=1e-9)
    assert r["entropy_rate_bits"] == pytest.approx(7 / 12, rel=1e-9)
    assert r["optimal_ppl"] == pytest.approx(2 ** (7 / 12), rel=1e-9)
    assert r["entropy_rate_nats"] == pytest.approx(7 / 12 * math.log(2), rel=1e-9)
    assert r["entropy_rate_bits_no_long_range"] == pytest.approx(8 / 12, rel=1e-9)
    # REFERENCES.md's 0.636 / 1.656 are the same bits over 11 predictions per string (no leading B)
    assert r["bits_per_string"] / (r["symbols_per_string"] - 1) == pytest.approx(0.636, abs=1e-3)
    assert 2 ** ((r["bits_per_string"] + 1) / (r["symbols_per_string"] - 1)) == pytest.approx(1.656, abs=1e-3)


def test_reber_corpus_and_empirical_entropy():
    c = data.load_corpus(cfg(name="reber", num_train=300_000, num_valid=1_000, num_test=1_000, seed=3))
    assert c.vocab.itos == list("BTPSXVE") and c.level == "char"
    assert (c.train.size, c.valid.size, c.test.size) == (300_000, 1_000, 1_000)
    assert c.meta["optimal_ppl"] == pytest.approx(2 ** (7 / 12))
    # every split starts at a string; the splits are different streams
    for s in (c.train, c.valid, c.test):
        assert c.vocab.decode(s[:2]) in ("BT", "BP")
    assert not np.array_equal(c.valid, c.test)
    # the true conditional log-probs of the stream: their mean is the entropy rate
    lp = data.reber_logprob(c.train)
    assert lp.shape == (c.train.size - 1,)
    assert -lp.mean() == pytest.approx(c.meta["entropy_rate_nats"], rel=0.01)
    # the embedded closing symbol repeats the opening one (the long-range dependency)
    text = c.vocab.decode(c.train)
    strings = text.split("EB")[1:-1]  # whole strings, without their leading B and final E
    assert all(s[0] == s[-1] and s[1] == "B" and s[-2] == "E" for s in strings)
    assert np.mean([len(s) + 2 for s in strings]) == pytest.approx(12.0, rel=0.01)


def test_reber_deterministic_and_logprob_rejects_invalid():
    a = data.load_corpus(cfg(name="reber", num_train=500, num_valid=100, num_test=100, seed=7))
    b = data.load_corpus(cfg(name="reber", num_train=500, num_valid=100, num_test=100, seed=7))
    assert np.array_equal(a.train, b.train)
    bad = a.vocab.encode("BTBTXXE")
    with pytest.raises(RnnlabError, match="impossible"):
        data.reber_logprob(bad)
    with pytest.raises(RnnlabError, match="integer >= 2"):
        data.load_corpus(cfg(name="reber", num_train=1))


# ------------------------------------------------------------------------------------------------
# TBPTT batching
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, b, t", [(1000, 20, 35), (101, 4, 5), (24, 4, 5), (50, 1, 7)])
def test_train_windows(n, b, t):
    ids = np.arange(n, dtype=np.int32)
    data_bl = data.batchify(ids, b)
    length = n // b
    assert data_bl.shape == (b, length)
    assert np.array_equal(data_bl[-1], ids[(b - 1) * length:b * length])  # row b = b-th contiguous stream
    x, y = data.train_windows(ids, b, t)
    w = (length - 1) // t
    assert x.shape == y.shape == (w, b, t) == (data.num_train_windows(n, b, t), b, t)
    assert x.dtype == np.int32
    assert np.array_equal(y, x + 1)  # y is x shifted by one token (ids are positions)
    assert np.array_equal(x[1:, :, 0], x[:-1, :, -1] + 1)  # windows continue each other


def test_train_windows_too_short():
    assert data.num_train_windows(10, 4, 5) == 0
    with pytest.raises(RnnlabError, match="at least batch_size \\* \\(bptt \\+ 1\\) = 24"):
        data.train_windows(np.arange(10), 4, 5)


@pytest.mark.parametrize("n, b, t", [
    (101, 4, 5),   # N-1 = 100 divisible by B, L = 25 divisible by T
    (101, 4, 7),   # L not divisible by T
    (100, 4, 5),   # N-1 not divisible by B
    (98, 3, 4),
    (6, 4, 3),     # more streams than needed: the last stream is empty
    (2, 1, 1),
    (1000, 20, 35),
])
def test_eval_windows_cover_every_target_once(n, b, t):
    ids = np.random.default_rng(n).integers(0, 50, size=n).astype(np.int32)
    x, y, m = data.eval_windows(ids, b, t)
    length = -(-(n - 1) // b)
    assert x.shape == y.shape == m.shape == (-(-length // t), b, t)
    assert m.sum() == n - 1
    # stream order: stream b, its windows in order, its positions in order
    ys = y.transpose(1, 0, 2).reshape(-1)
    xs = x.transpose(1, 0, 2).reshape(-1)
    ms = m.transpose(1, 0, 2).reshape(-1) == 1
    assert np.array_equal(ys[ms], ids[1:])
    assert np.array_equal(xs[ms], ids[:-1])
    assert np.all(x[m == 0] == 0) and np.all(y[m == 0] == 0)
    # within a stream the mask is 1 then 0 (padding only at the tail)
    per_stream = m.transpose(1, 0, 2).reshape(b, -1)
    assert np.all(np.diff(per_stream, axis=1) <= 0)


def test_eval_windows_too_short():
    with pytest.raises(RnnlabError, match="at least 2 tokens"):
        data.eval_windows(np.array([3]), 2, 2)
