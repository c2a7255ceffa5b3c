"""Tests of rnnlab.data.pairs: the synthetic seq2seq tasks against brute-force answers, padded pair
batches and their masks, detokenisation, d2l's English-French pairs (counts after the length filter,
a seeded split disjoint by source, vocab min frequency 2), pair-file errors and the zip download."""
from __future__ import annotations

import collections
import hashlib
import re
import shutil
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnlab import RnnlabError, data
from rnnlab.config import base_config, validate
from rnnlab.data import pairs as pairs_mod

from _offline import folder_with, no_download  # noqa: F401  (autouse: nothing downloads)


def cfg(name, seed=5, **task):
    t = dict(num_train=400, num_valid=40, num_test=50, min_len=1, max_len=8, test_min_len=10, test_max_len=14)
    t.update(task)
    return types.SimpleNamespace(name=name, seed=seed, task=types.SimpleNamespace(**t))


# ------------------------------------------------------------------------------------------------
# Synthetic tasks
# ------------------------------------------------------------------------------------------------


def brute(name, src: str) -> str:
    """Answers with explicit loops (no slicing, sorted() or int())."""
    if name == "copy":
        return "".join(c for c in src)
    if name == "reverse":
        return "".join(src[len(src) - 1 - i] for i in range(len(src)))
    if name == "sort":  # insertion sort
        out: list[str] = []
        for c in src:
            i = 0
            while i < len(out) and out[i] <= c:
                i += 1
            out.insert(i, c)
        return "".join(out)
    a, b = src.split("+")  # schoolbook addition, right to left with a carry
    a, b = a.rjust(max(len(a), len(b)), "0"), b.rjust(max(len(a), len(b)), "0")
    digits, carry = [], 0
    for i in range(len(a) - 1, -1, -1):
        s = "0123456789".index(a[i]) + "0123456789".index(b[i]) + carry
        digits.append("0123456789"[s % 10])
        carry = s // 10
    if carry:
        digits.append("1")
    out = "".join(reversed(digits)).lstrip("0")
    return out or "0"


def chars(vocab, ids) -> str:
    return "".join(vocab.itos[int(i)] for i in ids)


@pytest.mark.parametrize("name", ["copy", "reverse", "sort", "addition"])
def test_tasks_match_brute_force(name):
    c = data.load_corpus(cfg(name))
    assert isinstance(c, data.PairCorpus) and (c.kind, c.level) == ("pairs", "char")
    assert c.src_vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and c.vocab is c.tgt_vocab
    for split, (lo, hi) in (("train", (1, 8)), ("valid", (1, 8)), ("test", (10, 14))):
        pairs = c.split(split)
        assert len(pairs) == {"train": 400, "valid": 40, "test": 50}[split]
        lengths = []
        for s, t in pairs:
            assert s.dtype == t.dtype == np.int32 and s.min() >= 4 and t.min() >= 4  # no specials inside
            src = chars(c.src_vocab, s)
            assert chars(c.tgt_vocab, t) == brute(name, src)
            if name == "addition":
                ops = src.split("+")
                assert all(len(o) == 1 or o[0] != "0" for o in ops)
                lengths += [len(o) for o in ops]
            else:
                lengths.append(len(src))
        assert lo <= min(lengths) and max(lengths) <= hi
        if split == "train":
            assert (min(lengths), max(lengths)) == (lo, hi)
    assert c.meta["test_targets"] == sum(t.size + 1 for _, t in c.test)


def test_symbols_and_seeds():
    c = data.load_corpus(cfg("sort", vocab=3))
    assert c.src_vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c"]
    assert data.load_corpus(cfg("copy")).src_vocab.size == 14  # 4 specials + 10 symbols by default
    a, b, d = (data.load_corpus(cfg("reverse", seed=s)) for s in (1, 1, 2))
    assert [s.tolist() for s, _ in a.train] == [s.tolist() for s, _ in b.train]
    assert [s.tolist() for s, _ in a.train] != [s.tolist() for s, _ in d.train]
    assert data.task_answer("addition", "999+1") == "1000" and data.task_answer("sort", "cab") == "abc"


@pytest.mark.parametrize("task,match", [({"vocab": 1}, "data.task.vocab=1 is not valid for copy"),
                                        ({"vocab": 27}, "2..26 symbols"),
                                        ({"test_max_len": 3}, "test_max_len=3 is below")])
def test_task_errors(task, match):
    with pytest.raises(RnnlabError, match=match):
        data.load_corpus(cfg("copy", **task))


# ------------------------------------------------------------------------------------------------
# Batches and detokenisation
# ------------------------------------------------------------------------------------------------


def test_pair_batches_exact():
    pairs = [(np.array([5, 6, 7]), np.array([8, 9])), (np.array([5]), np.array([])), (np.array([6, 6]), np.array([7]))]
    b = data.pair_batches(pairs, batch_size=2, bos=1, eos=2)
    assert isinstance(b, data.PairBatches)
    assert b.src.shape == (2, 2, 3) and b.src_len.shape == (2, 2) and b.tgt_in.shape == b.mask.shape == (2, 2, 3)
    np.testing.assert_array_equal(b.src, [[[5, 6, 7], [5, 0, 0]], [[6, 6, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(b.src_len, [[3, 1], [2, 0]])
    np.testing.assert_array_equal(b.tgt_in, [[[1, 8, 9], [1, 0, 0]], [[1, 7, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(b.tgt_out, [[[8, 9, 2], [2, 0, 0]], [[7, 2, 0], [0, 0, 0]]])
    np.testing.assert_array_equal(b.mask, [[[1, 1, 1], [1, 0, 0]], [[1, 1, 0], [0, 0, 0]]])
    assert all(a.dtype == np.int32 for a in b[:4]) and b.mask.dtype == np.float32
    wide = data.pair_batches(pairs, 4, 1, 2, max_src=5, max_tgt=4)
    assert wide.src.shape == (1, 4, 5) and wide.tgt_out.shape == (1, 4, 5) and wide.mask.sum() == 6


def test_pair_batches_on_a_task():
    c = data.load_corpus(cfg("addition"))
    b = data.pair_batches(c.valid, 16, c.tgt_vocab.stoi["<bos>"], c.tgt_vocab.stoi["<eos>"])
    assert b.mask.sum() == c.meta["valid_targets"]
    # tgt_in[t + 1] = tgt_out[t] = target[t] wherever position t + 1 is real; <bos> first, <eos> last
    assert (b.tgt_in[..., 1:] == np.where(b.mask[..., 1:] > 0, b.tgt_out[..., :-1], 0)).all()
    assert ((b.tgt_in[..., 0] == 1) == (b.src_len > 0)).all()
    assert ((b.tgt_out == 2) == (b.mask - np.pad(b.mask[..., 1:], ((0, 0), (0, 0), (0, 1))) > 0)).all()
    assert (b.src_len == (b.src > 0).sum(-1)).all()


@pytest.mark.parametrize("call,match", [
    (lambda: data.pair_batches([], 2, 1, 2), "no pairs"),
    (lambda: data.pair_batches([(np.array([4]), np.array([5]))], 0, 1, 2), "batch_size=0"),
    (lambda: data.pair_batches([(np.array([4]), np.array([5])), (np.array([]), np.array([5]))], 2, 1, 2),
     "pair 1 has an empty source"),
    (lambda: data.pair_batches([(np.array([4, 4]), np.array([5]))], 2, 1, 2, max_src=1), "max_src=1"),
])
def test_pair_batches_errors(call, match):
    with pytest.raises(RnnlabError, match=match):
        call()


def test_detokenize():
    v = data.Vocab(itos=list(data.SPECIALS) + ["il", "pleut", ",", "non", "!", "?"], level="word")
    assert data.detokenize(v, [1, 4, 5, 6, 7, 8, 2, 9, 9, 0]) == "il pleut, non!"
    assert data.detokenize(v, [4, 9, 0, 0]) == "il?"
    assert data.detokenize(pairs_mod.symbol_vocab("abc"), [1, 4, 5, 6, 2, 4]) == "abc"


# ------------------------------------------------------------------------------------------------
# fra_eng
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fra_dir(data_dir) -> Path:
    return folder_with(data_dir, "fra_eng/fra.txt")


@pytest.fixture(scope="module")
def fra(fra_dir):
    return data.load_corpus(types.SimpleNamespace(name="fra_eng", dir=str(fra_dir), seed=1234))


def test_fra_counts_after_filter(fra, fra_dir):
    # an independent count: d2l's regex form of preprocess_nmt, words split on spaces, <= 10 words a side
    text = (fra_dir / "fra_eng" / "fra.txt").read_text(encoding="utf-8")
    text = re.sub(r"(?<=[^ ])([,.!?])", r" \1", text.replace("\u202f", " ").replace("\xa0", " ").lower())
    sides = [line.split("\t") for line in text.split("\n")[:-1]]
    kept = [(e, f) for e, f in ((a.split(), b.split()) for a, b in sides) if len(e) <= 10 and len(f) <= 10]
    assert (len(sides), len(kept)) == (167_130, 140_658) == (fra.meta["pairs_read"], fra.meta["pairs_kept"])
    assert len({tuple(e) for e, _ in kept}) == 97_423
    assert (fra.kind, fra.level) == ("pairs", "word")
    assert [len(fra.split(s)) for s in ("train", "valid", "test")] == [126_646, 6_971, 7_041]
    assert fra.meta["train_pairs"] + fra.meta["valid_pairs"] + fra.meta["test_pairs"] == 140_658
    assert (fra.src_vocab.size, fra.tgt_vocab.size) == (8_238, 14_561)
    assert max(max(s.size, t.size) for p in ("train", "valid", "test") for s, t in fra.split(p)) == 10


def test_fra_split_disjoint_seeded_and_vocab_min_freq(fra, fra_dir):
    words = pairs_mod.read_pairs((fra_dir / "fra_eng" / "fra.txt").read_text(encoding="utf-8"))
    kept = [p for p in words if len(p[0]) <= 10 and len(p[1]) <= 10]
    split = pairs_mod.split_by_source(kept, 1234)
    sources = {k: {tuple(s) for s, _ in v} for k, v in split.items()}
    assert [len(sources[k]) for k in ("train", "valid", "test")] == [87_680, 4_871, 4_872]  # 90/5/5 of 97,423
    assert not (sources["train"] & sources["valid"] or sources["train"] & sources["test"]
                or sources["valid"] & sources["test"])
    assert [len(split[k]) for k in ("train", "valid", "test")] == [len(fra.train), len(fra.valid), len(fra.test)]
    other = pairs_mod.split_by_source(kept, 1235)
    assert {tuple(s) for s, _ in other["test"]} != sources["test"]
    # the corpus' pairs are these words, encoded (unknown words -> <unk>)
    for (s, t), (ws, wt) in zip(fra.test[:200], split["test"][:200]):
        assert s.tolist() == fra.src_vocab.encode_tokens(ws).tolist()
        assert t.tolist() == fra.tgt_vocab.encode_tokens(wt).tolist()
    # vocab = specials + the train words seen at least twice
    counts = collections.Counter(w for _, wt in split["train"] for w in wt)
    assert fra.tgt_vocab.itos[:4] == list(data.SPECIALS)
    assert set(fra.tgt_vocab.itos[4:]) == {w for w, c in counts.items() if c >= 2}
    assert fra.tgt_vocab.itos[4] == counts.most_common(1)[0][0]
    unk = fra.tgt_vocab.stoi["<unk>"]
    assert sum(int((t == unk).sum()) for _, t in fra.train) == sum(c for c in counts.values() if c == 1)


def test_fra_detokenize(fra):
    out = collections.defaultdict(set)
    for p in ("train", "valid", "test"):
        for s, t in fra.split(p):
            out[data.detokenize(fra.src_vocab, s)].add(data.detokenize(fra.tgt_vocab, t))
    assert out["go."] == {"va!"} and out["run!"] == {"cours!", "courez!"}  # fra.txt lines 1, 3 and 4


def _fra_file(folder: Path, text: str) -> Path:
    (folder / "fra_eng").mkdir(parents=True, exist_ok=True)
    (folder / "fra_eng" / "fra.txt").write_text(text, encoding="utf-8")
    return folder


def _numbered(n: int) -> str:
    return "".join(f"Say {i}.\tDis {i} !\n" for i in range(n))


def test_tiny_pair_file(tmp_path):
    text = "Go.\tVa !\nHi.\tSalut\u202f!\nGo.\tMarche.\nRun!\tCours\u00a0!\nI won, ok?\tJ'ai gagné,\tCC-BY 2.0\n"
    text += _numbered(20)
    c = data.load_corpus(types.SimpleNamespace(name="fra_eng", dir=str(_fra_file(tmp_path, text)), seed=0,
                                               task=types.SimpleNamespace(max_tokens=3)))
    assert c.meta["pairs_read"] == 25 and c.meta["pairs_kept"] == 24  # "i won , ok ?" has 5 words
    assert [len(c.split(s)) for s in ("train", "valid", "test")] == [21, 1, 2]  # 23 sources: 20 / 1 / 2
    words = pairs_mod.read_pairs(text)
    assert words[1] == (["hi", "."], ["salut", "!"]) and words[3] == (["run", "!"], ["cours", "!"])
    assert words[4] == (["i", "won", ",", "ok", "?"], ["j'ai", "gagné", ","])  # a third column is ignored
    with pytest.raises(RnnlabError, match="too few for a train / valid / test split"):
        data.load_corpus(types.SimpleNamespace(name="fra_eng", dir=str(_fra_file(tmp_path, text)),
                                               task=types.SimpleNamespace(max_tokens=2)))


@pytest.mark.parametrize("text,match", [
    ("Go.\tVa !\nHi. Salut !\n", "line 2 has no tab"),
    ("Go.\tVa !\nHi.\tSalut !\n \tCours !\n", "line 3 has an empty source"),
    ("Go.\t \n", "line 1 has an empty target"),
    ("Go.\tVa !\n\nHi.\tSalut !\n", "line 2 has no tab"),
])
def test_pair_file_errors(tmp_path, text, match):
    with pytest.raises(RnnlabError, match=match) as e:
        data.load_corpus(types.SimpleNamespace(name="fra_eng", dir=str(_fra_file(tmp_path, text))))
    assert "\n" not in str(e.value)


def test_fra_download_from_zip(tmp_path, monkeypatch):
    """No data.dir nor RNNLAB_DATA_DIR: d2l's zip is fetched, its fra-eng/fra.txt kept if its SHA-256 fits."""
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    content = _numbered(30)
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("fra-eng/fra.txt", content)
        z.writestr("fra-eng/_about.txt", "about")
    monkeypatch.setattr(data.files, "_fetch", lambda url, dest: shutil.copyfile(archive, dest))
    cached = tmp_path / "cache" / "fra_eng" / "fra.txt"
    with pytest.raises(RnnlabError, match="fra-eng/fra.txt of http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip "
                                          "has SHA-256") as e:  # the tiny zip is not the real file
        data.load_corpus(types.SimpleNamespace(name="fra_eng"))
    assert "\n" not in str(e.value) and not cached.exists() and not list(cached.parent.iterdir())
    sha = hashlib.sha256(content.encode()).hexdigest()
    monkeypatch.setattr(pairs_mod, "FRA_SOURCE", (pairs_mod.FRA_SOURCE[0], sha))
    c = data.load_corpus(types.SimpleNamespace(name="fra_eng", seed=0))
    assert cached.read_text() == content and c.meta["pairs_read"] == 30
    with pytest.raises(RnnlabError, match="could not get nope.txt of"):
        data.download_member("http://x/y.zip", "nope.txt", tmp_path / "other.txt", sha)
    assert not (tmp_path / "other.txt").exists() and not (tmp_path / "other.txt.zip.part").exists()


def test_registry_and_config():
    for name in ("copy", "reverse", "sort", "addition", "fra_eng"):
        c = base_config()
        c.data.name = name
        validate(c)
    assert data.get_dataset("fra_eng").files == {"fra_eng/fra.txt": pairs_mod.FRA_SOURCE + ("fra-eng/fra.txt",)}
