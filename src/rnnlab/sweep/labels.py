"""Member names: ``cell=gru,seed=1`` from a member's overrides (short unique field names,
filesystem-safe, at most 200 characters), and the labels of zipped tuples."""
from __future__ import annotations

import hashlib
import re


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt(x) for x in v)
    return str(v)


def _safe(text: str) -> str:
    """Filesystem-safe: letters, digits and . _ - + = , only; no leading dot."""
    s = re.sub(r"[^A-Za-z0-9._+=,-]", "_", text)
    return ("_" + s[1:]) if s.startswith(".") else s


def short_names(fields: list[str]) -> dict:
    """Field -> the shortest dotted suffix that is unique among ``fields`` (model.cell -> cell)."""
    out = {}
    for f in fields:
        parts = f.split(".")
        for k in range(1, len(parts) + 1):
            cand = ".".join(parts[-k:])
            if sum(1 for g in fields if g == cand or g.endswith("." + cand)) == 1:
                out[f] = cand
                break
        else:
            out[f] = f
    return out


def label(overrides: dict, names: dict) -> str:
    """``cell=gru,seed=1`` (filesystem-safe, at most 200 characters)."""
    text = ",".join(f"{names[f]}={_fmt(v)}" for f, v in overrides.items()) or "default"
    text = _safe(text)
    if len(text) > 200:
        text = text[:180] + "-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return text


def _unique(labels: list[str], keys: list) -> list[str]:
    """Make labels unique (two values that look alike once made filesystem-safe get a hash suffix)."""
    counts = {}
    for lb in labels:
        counts[lb] = counts.get(lb, 0) + 1
    return [lb if counts[lb] == 1 else f"{lb}-{hashlib.sha1(repr(k).encode()).hexdigest()[:8]}"
            for lb, k in zip(labels, keys)]


def zip_labels(zipped: dict, names: dict | None = None) -> list[str]:
    """One label per zipped tuple (``mode=scheduled_sampling,kind=linear``): the W&B parameter values."""
    if not zipped:
        return []
    names = names or short_names(list(zipped))
    n = len(next(iter(zipped.values())))
    tuples = [{f: zipped[f][i] for f in zipped} for i in range(n)]
    return _unique([label(t, names) for t in tuples], tuples)
