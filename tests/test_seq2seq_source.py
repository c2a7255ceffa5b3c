"""experiments.sample --source at word level (sampling.encode_source): the data's own normalisation
(data.pairs.preprocess_nmt) first, then words outside the source vocabulary map to <unk> with one warning
naming them; an empty source is a one-line error. The vocabulary is built like fra_eng's (word_vocab, min
frequency 2) from the first pairs of the real fra.txt."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from rnnlab import RnnlabError
from rnnlab.data.pairs import read_pairs, word_vocab
from rnnlab.sampling import encode_source

FRA = Path(os.environ.get("RNNLAB_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) / "fra_eng" / "fra.txt"


@pytest.fixture(scope="module")
def eng_vocab():
    if not FRA.exists():
        pytest.skip(f"{FRA} not found (set RNNLAB_DATA_DIR)")
    with open(FRA, encoding="utf-8") as f:
        head = "".join(next(f) for _ in range(3000))
    return word_vocab([src for src, _ in read_pairs(head, str(FRA))], min_freq=2)


def test_known_words_after_normalisation(eng_vocab):
    ids, note = encode_source(eng_vocab, "I am COLD.")  # lowercased, the full stop split off
    assert note is None
    assert [eng_vocab.itos[i] for i in ids] == ["i", "am", "cold", "."]


def test_unknown_words_map_to_unk_with_one_warning(eng_vocab):
    ids, note = encode_source(eng_vocab, "Tom is xyzzy, qwerty xyzzy!")
    words = [eng_vocab.itos[i] for i in ids]
    assert words == ["tom", "is", eng_vocab.unk, ",", eng_vocab.unk, eng_vocab.unk, "!"]
    assert note is not None and "\n" not in note and note.count("'xyzzy'") == 1 and "'qwerty'" in note
    assert eng_vocab.unk in note


def test_empty_source_is_one_line(eng_vocab):
    with pytest.raises(RnnlabError) as e:
        encode_source(eng_vocab, "   ")
    assert "--source is empty" in str(e.value) and "\n" not in str(e.value)
