"""Checks that need the data (or another run directory), made after the data is loaded and before
anything is written or trained (``preflight``; config.validate checks the fields without data).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import RnnlabError
from .checkpoint import checkpoint_config


def preflight(cfg, corpus) -> None:
    """What can be checked once the data is loaded, before anything is written or trained: for token
    streams, every evaluation stream is at least ``eval.bptt`` targets long (each of the
    ``eval.batch_size`` streams starts from a zero carry, so shorter ones score tokens with less
    context than a window and perplexity rises: the tiny Reber run of the tests, 600 valid tokens,
    window 10, gives 5.646 with 1 stream, 5.779 with 66 (the most allowed), 6.177 with 599); the
    free-running prompts fit the test split; ``eval.reference`` is a trained run with this
    vocabulary."""
    if getattr(corpus, "kind", "tokens") != "tokens":
        return
    B, T = int(cfg.eval.batch_size), int(cfg.eval.bptt or cfg.train.bptt)
    for split in ("valid", "test"):
        n = len(getattr(corpus, split))
        length = -(-(n - 1) // B)  # targets per stream: ceil((N - 1) / B) (data.eval_windows)
        if length < T and B > 1:  # one stream (B = 1) is the whole split, however short
            # the most streams of >= T targets: the largest B with ceil((N-1)/B) >= T, i.e. B < (N-1)/(T-1)
            most = max(1, n - 1 if T == 1 else -(-(n - 1) // (T - 1)) - 1)
            raise RnnlabError(f"eval.batch_size={B} cuts the {split} split ({n} tokens) into streams of {length} "
                              f"targets, shorter than the eval window eval.bptt={T} (each stream starts from a zero "
                              f"carry); use eval.batch_size <= {most} or a smaller eval.bptt")
    if not cfg.eval.get("free_running", False):
        return
    from .free_running import prompt_positions

    e = cfg.eval
    C = max(int(e.sample_len), max((int(k) for k in e.exposure_ks), default=0) + int(e.gap_tokens))
    prompt_positions(corpus, int(e.num_samples), int(e.prompt_len), C)  # raises when the prompts do not fit
    if str(e.reference):
        _check_reference(str(e.reference), corpus)


def _check_reference(ref: str, corpus) -> None:
    where = Path(ref)
    kept, _ = checkpoint_config(where) if where.is_dir() else (None, None)
    if not (where / "vocab.json").is_file() or not ((where / "config.json").is_file() or kept):
        raise RnnlabError(f"eval.reference={ref!r} is not a trained run directory (no config.json, vocab.json or "
                          f"checkpoint); name the run directory of a model trained on the same data, or ''")
    if not any((where / "checkpoints" / sub).glob("[0-9]*") for sub in ("best", "latest")):
        raise RnnlabError(f"eval.reference={ref!r} has no checkpoint yet; train it first (or set eval.reference='')")
    try:
        itos = json.loads((where / "vocab.json").read_text())["itos"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RnnlabError(f"eval.reference={ref!r}: its vocab.json is unreadable; name another run") from None
    if list(itos) != list(corpus.vocab.itos):
        raise RnnlabError(f"eval.reference={ref!r} has a different vocabulary ({len(itos)} tokens) than this run "
                          f"({corpus.vocab.size}); name a run trained on the same data")
