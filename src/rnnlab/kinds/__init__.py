"""Kinds of sequence (the seam, ``kinds/base.py``): each module provides one kind's input/output
sizes, batches and metrics; ``get_kind(corpus)`` picks the one a corpus names in its ``kind``
attribute (token corpora have none: ``tokens``)."""
from __future__ import annotations

from .. import RnnlabError
from .base import Kind, TrainWindows
from .frames import FRAMES
from .pairs import PAIRS
from .streams import STREAMS
from .transduction import TRANSDUCTION

KINDS = {k.name: k for k in (STREAMS, FRAMES, TRANSDUCTION, PAIRS)}


def get_kind(corpus) -> Kind:
    """The kind of ``corpus`` (its ``kind`` attribute; token corpora: ``tokens``)."""
    name = getattr(corpus, "kind", "tokens")
    if name not in KINDS:
        raise RnnlabError(f"a corpus of kind {name!r} has no training support; known kinds: {', '.join(sorted(KINDS))}")
    return KINDS[name]


__all__ = ["KINDS", "Kind", "TrainWindows", "get_kind"]
