"""Dotted config fields (``model.cell``, ``train.schedule.kind``): list, read and set them on a
ConfigDict, with one-line errors that name the closest real field."""
from __future__ import annotations

import difflib

import ml_collections

from .. import RnnlabError


def leaf_fields(cfg, prefix: str = "") -> list[str]:
    """Every dotted leaf field of a ConfigDict (``model.cell``, ``train.schedule.kind``, ...)."""
    out = []
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        out += leaf_fields(v, name + ".") if isinstance(v, ml_collections.ConfigDict) else [name]
    return out


def _parent(cfg, dotted: str, what: str):
    """(section ConfigDict, last key) of a dotted leaf field; RnnlabError naming close fields."""
    parts = dotted.split(".")
    node = cfg
    for p in parts[:-1]:
        node = node.get(p) if isinstance(node, ml_collections.ConfigDict) else None
    last = parts[-1]
    if (not isinstance(node, ml_collections.ConfigDict) or last not in node
            or isinstance(node[last], ml_collections.ConfigDict)):
        close = difflib.get_close_matches(dotted, leaf_fields(cfg), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise RnnlabError(f"{what}: {dotted!r} is not a config field{hint}; fields are dotted paths "
                          f"like model.cell or train.seed (see src/rnnlab/config.py)")
    return node, last


def check_field(cfg, dotted: str, what: str = "get_sweep()") -> None:
    """RnnlabError unless ``dotted`` is a leaf field of ``cfg``."""
    _parent(cfg, dotted, what)


def get_field(cfg, dotted: str):
    node, last = _parent(cfg, dotted, "field")
    return node[last]


def set_field(cfg, dotted: str, value, what: str = "get_sweep()") -> None:
    node, last = _parent(cfg, dotted, what)
    try:
        node[last] = value
    except (TypeError, ValueError) as e:
        raise RnnlabError(f"{what}: {dotted}={value!r} has the wrong type for that field "
                          f"({type(node[last]).__name__}, now {node[last]!r})") from None
