"""Load a trained run back from its directory: ``load_run(workdir) -> (cfg, model, params, vocab)``.

A run directory (written by ``train.train_and_evaluate``) holds ``config.json``, ``vocab.json``
(``data.Vocab.to_json``) and orbax checkpoints under ``checkpoints/{latest,best}/<step>/`` with the
items ``state`` (a TrainState) and ``meta``. Only the parameters are needed to use a model, so the
state is restored without a target (as saved, numpy arrays) and its ``params`` are checked against
the shapes that config.json and vocab.json imply; the optimizer state is not rebuilt. Every problem
is one RnnlabError line: a missing folder, config or vocab, no checkpoint, or shapes that do not
match.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError
from .config import base_config, from_dict
from .data.vocab import Vocab
from .model import build_model, model_carries
from .rundir import IO_FILE

CHECKPOINTS = ("best", "latest")


class Run(NamedTuple):
    """A loaded run; unpacks as ``cfg, model, params, vocab``."""

    cfg: Any  # ml_collections.ConfigDict (config.json over base_config())
    model: Any  # model.LanguageModel
    params: dict  # the model's parameters (jax arrays)
    vocab: Vocab


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise RnnlabError(f"{path} not found; a run directory written by experiments.train holds its {what}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RnnlabError(f"{path} is not valid JSON ({e.__class__.__name__}); it should be the run's {what}") from None


def _merge(base: dict, over: dict) -> dict:
    """Nested dict: ``base`` updated by ``over`` (a config.json written before a field existed
    still loads, with that field's default)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def load_config(workdir) -> Any:
    """The run's ConfigDict from ``workdir/config.json`` (defaults filled from ``base_config()``)."""
    saved = _read_json(Path(workdir) / "config.json", "config.json")
    return from_dict(_merge(json.loads(base_config().to_json()), saved))


def load_vocab(workdir) -> Vocab:
    d = _read_json(Path(workdir) / "vocab.json", "vocabulary (vocab.json)")
    try:
        return Vocab.from_json(d)
    except (KeyError, TypeError) as e:
        raise RnnlabError(f"{Path(workdir) / 'vocab.json'} is not a vocab ({e}); it should hold itos and level") from None


def _steps(folder: Path) -> list[int]:
    """Completed checkpoint steps in ``folder`` (orbax writes to a temporary name and renames it)."""
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def find_checkpoint(workdir, which: str = "best") -> tuple[str, int]:
    """-> (which, step) of the checkpoint to load: the newest step under checkpoints/<which>/.
    ``best`` falls back to ``latest`` when a run has no best checkpoint yet."""
    if which not in CHECKPOINTS:
        raise RnnlabError(f"checkpoint={which!r} is not valid; allowed: {', '.join(CHECKPOINTS)}")
    root = Path(workdir) / "checkpoints"
    for w in (which, "latest") if which == "best" else (which,):
        steps = _steps(root / w)
        if steps:
            return w, steps[-1]
    raise RnnlabError(f"no checkpoint in {root} (looked in {which}/" + (" and latest/" if which == "best" else "")
                      + "); train the run first: python -m experiments.train --config=... --workdir="
                      + str(workdir))


def restore_params(workdir, which: str, step: int) -> dict:
    """The ``params`` of the checkpoint ``checkpoints/<which>/<step>`` as numpy arrays (no target needed)."""
    import orbax.checkpoint as ocp

    folder = (Path(workdir) / "checkpoints" / which).absolute()
    options = ocp.CheckpointManagerOptions(create=False, enable_async_checkpointing=False)
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)  # orbax warns about items it is not asked to restore
    try:
        with ocp.CheckpointManager(folder, options=options) as mgr:
            out = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    except Exception as e:  # noqa: BLE001  (a damaged or foreign checkpoint: one line)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RnnlabError(f"cannot restore {folder / str(step)} ({type(e).__name__}: {first}); "
                          f"the checkpoint is damaged or not an rnnlab TrainState") from None
    finally:
        absl_log.setLevel(level)
    state = out.state
    if not isinstance(state, dict) or "params" not in state:
        raise RnnlabError(f"{folder / str(step)} holds no params; it is not an rnnlab TrainState checkpoint")
    return state["params"]


def _shapes(tree) -> dict:
    return {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_params(params, model, cfg, where: str) -> None:
    """RnnlabError naming the first parameters whose shapes differ from what ``model`` expects."""
    inputs = jnp.zeros((1, 1, model.num_features), jnp.float32) if model.frames else jnp.zeros((1, 1), jnp.int32)
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), inputs, model_carries(cfg, 1))["params"])
    want, got = _shapes(expected), _shapes(params)
    diffs = [f"{k} missing" for k in want if k not in got]
    diffs += [f"{k} unexpected" for k in got if k not in want]
    diffs += [f"{k} is {got[k]} in the checkpoint, {want[k]} from config.json/vocab.json"
              for k in want if k in got and got[k] != want[k]]
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise RnnlabError(f"checkpoint {where} does not match the run's config.json/vocab.json ({shown}); "
                          f"the files belong to different runs")


def load_run(workdir, which: str = "best") -> Run:
    """-> Run(cfg, model, params, vocab) of the run in ``workdir`` from its best (default) or latest
    checkpoint. ``best`` falls back to ``latest`` if there is no best checkpoint."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise RnnlabError(f"run directory {workdir} not found; give the --workdir of a trained run")
    which, step = find_checkpoint(workdir, which)
    cfg = load_config(workdir)
    io = _read_json(workdir / IO_FILE, "io.json") if (workdir / IO_FILE).is_file() else None
    if io and io.get("kind") == "pairs":  # an encoder-decoder: seq2seq/runs.py loads it
        raise RnnlabError(f"{workdir} is a sequence-to-sequence run; load it with rnnlab.seq2seq.runs.load_pair_run "
                          f"(experiments.sample --source=TEXT decodes with it)")
    vocab = load_vocab(workdir) if io is None or (workdir / "vocab.json").is_file() else None
    try:  # runs written before io.json existed are token LMs: their sizes come from vocab.json
        sizes = {k: v for k, v in io.items() if k != "kind"} if io else {"vocab_size": vocab.size}
        if vocab is not None and "vocab_size" in sizes:  # token data: the vocabulary says V (a changed one is refused)
            sizes["vocab_size"] = vocab.size
        model = build_model(cfg, sizes)
    except (AttributeError, KeyError) as e:
        raise RnnlabError(f"{workdir / 'config.json'} lacks a model field ({e}); it is not an rnnlab config") from None
    params = restore_params(workdir, which, step)
    params = {k: v for k, v in params.items() if k != "discriminator"}  # professor forcing's, not the model's
    check_params(params, model, cfg, f"{workdir}/checkpoints/{which}/{step}")
    return Run(cfg, model, jax.tree_util.tree_map(jnp.asarray, params), vocab)

