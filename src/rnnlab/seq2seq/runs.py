"""Load a trained encoder-decoder run back from its directory (what ``experiments.sample --source``
reads): config.json, io.json (``kind: pairs``, the sizes and the source vocabulary), vocab.json (the
target vocabulary) and the best (or latest) checkpoint's parameters, the professor-forcing
discriminator's left out. Every problem is one RnnlabError line, as in ``runs.load_run``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import RnnlabError
from ..data.vocab import Vocab
from ..rundir import IO_FILE
from ..runs import find_checkpoint, load_config, load_vocab, restore_params
from .model import Seq2Seq, build_seq2seq
from .professor import generator_params


class PairRun(NamedTuple):
    cfg: Any
    model: Seq2Seq
    params: dict
    src_vocab: Vocab
    tgt_vocab: Vocab


def run_kind(workdir) -> str:
    """The kind of sequence a run directory was trained on (io.json's ``kind``; ``tokens`` without one)."""
    if not Path(workdir).is_dir():
        raise RnnlabError(f"run directory {workdir} not found; give the --workdir of a trained run")
    path = Path(workdir) / IO_FILE
    if not path.is_file():
        return "tokens"
    try:
        return str(json.loads(path.read_text()).get("kind", "tokens"))
    except (OSError, ValueError, AttributeError):
        raise RnnlabError(f"{path} is not valid JSON; it should be the run's io.json") from None


def load_pair_run(workdir, which: str = "best") -> PairRun:
    """-> PairRun(cfg, model, params, src_vocab, tgt_vocab) of the seq2seq run in ``workdir``."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise RnnlabError(f"run directory {workdir} not found; give the --workdir of a trained run")
    which, step = find_checkpoint(workdir, which)
    cfg = load_config(workdir)
    try:
        io = json.loads((workdir / IO_FILE).read_text())
        src_vocab = Vocab.from_json(io["src_vocab"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RnnlabError(f"{workdir / IO_FILE} lacks the source vocabulary ({type(e).__name__}); it is not a "
                          f"seq2seq run's io.json") from None
    tgt_vocab = load_vocab(workdir)
    model = build_seq2seq(cfg, io)
    params = generator_params(restore_params(workdir, which, step))
    want = jax.eval_shape(lambda: model.init_params(jax.random.key(0)))
    shapes = lambda t: {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in  # noqa: E731
                        jax.tree_util.tree_flatten_with_path(t)[0]}
    if shapes(want) != shapes(params):
        diff = sorted(set(shapes(want).items()) ^ set(shapes(params).items()))[:2]
        raise RnnlabError(f"checkpoint {workdir}/checkpoints/{which}/{step} does not match the run's config.json/io.json "
                          f"({diff}); the files belong to different runs")
    return PairRun(cfg, model, jax.tree_util.tree_map(jnp.asarray, params), src_vocab, tgt_vocab)
