"""Gate inspection: run a trained model over a text and read, per time step and layer, what the
gates did, and what the model predicted next.

``trace(model, params, tokens [B, T])`` runs the model teacher-forced from a zero carry through
``unroll.scan_layer(..., gates=True)`` (the same scan and the same cell math as training; each
step's values come from ``cell.inspect``) and returns per layer a dict of [B, T, H] arrays:

* GRU (``gru``, ``gru_cho``): ``r`` reset, ``z`` update, ``n`` candidate, ``h`` output.
  In both conventions here h' = (1 - z) * n + z * h: z near 1 KEEPS the old state (see cells/gru.py).
* LSTM: ``i`` input, ``f`` forget, ``g`` candidate, ``o`` output, ``c`` cell state, ``h`` output.
* RNN: ``h``.

Column t holds the values computed while reading token t, and ``logits[:, t]`` predict token t+1.

``inspect_text(model, params, vocab, text)`` is the text-level form (batch of one, arrays [T, H]);
``top_table`` lists the top-k next tokens per step, ``write_top_csv`` writes it, and
``plot_gate`` / ``write_heatmaps`` draw units x time heatmaps with the text along the time axis
(matplotlib's Agg canvas, no display needed).
"""
from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import RnnlabError
from .model import initial_carries
from .unroll import scan_layer


@partial(jax.jit, static_argnames=("model", "top_k"))
def trace(model, params, tokens, top_k: int = 5):
    """tokens [B, T] int -> dict with ``logits`` [B, T, V], ``top_ids`` / ``top_probs`` [B, T, k]
    (the k most likely next tokens after each step, probabilities in descending order) and
    ``gates``: one dict per layer, gate name -> [B, T, H]. Dropout off, zero initial carry."""
    B = tokens.shape[0]
    carries = initial_carries(model.cell, model.num_layers, B, model.hidden_size, model.forget_bias)

    def run(m, tokens, carries):
        h = m.embed(tokens.T)  # [T, B, E]
        cell = m.cell_fns
        layers = []
        for p, c in zip(m.layer_params(), carries):
            _, h, g = scan_layer(cell, p, c, h, gates=True)
            g = dict(g)
            g["h"] = h
            layers.append({k: jnp.swapaxes(v, 0, 1) for k, v in g.items()})  # [B, T, H]
        return jnp.swapaxes(m.logits(h), 0, 1), layers

    logits, layers = model.apply({"params": params}, tokens, carries, method=run)
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    top_probs, top_ids = jax.lax.top_k(probs, min(top_k, logits.shape[-1]))
    return {"logits": logits, "top_ids": top_ids, "top_probs": top_probs, "gates": layers}


class GateTrace(NamedTuple):
    """The trace of one text (batch of one): arrays are [T, ...]."""

    cell: str
    tokens: list  # the T input tokens (strings)
    ids: np.ndarray  # [T] int32
    gates: list  # per layer: {gate name: [T, H]}
    logits: np.ndarray  # [T, V]: logits[t] predict token t + 1
    top_ids: np.ndarray  # [T, k]
    top_probs: np.ndarray  # [T, k]


def inspect_text(model, params, vocab, text: str, *, top_k: int = 5, unknown: str = "error") -> GateTrace:
    """Trace ``text`` (tokens not in the vocab: ``unknown`` = 'error', 'unk' or 'drop', as in Vocab.encode)."""
    ids = vocab.encode(text, unknown=unknown)
    if ids.size == 0:
        raise RnnlabError("the text to inspect is empty; give at least one token of the vocab")
    out = jax.device_get(trace(model, params, jnp.asarray(ids[None, :], jnp.int32), top_k=int(top_k)))
    gates = [{k: np.asarray(v[0]) for k, v in layer.items()} for layer in out["gates"]]
    return GateTrace(cell=model.cell, tokens=[vocab.itos[i] for i in ids], ids=np.asarray(ids), gates=gates,
                     logits=np.asarray(out["logits"][0]), top_ids=np.asarray(out["top_ids"][0]),
                     top_probs=np.asarray(out["top_probs"][0]))


def show(token: str) -> str:
    """A token as it can be read in a table or on an axis: space -> '␣', newline -> '⏎', tab -> '⇥'."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")


def top_table(tr: GateTrace, vocab) -> list[dict]:
    """One row per step t: the input token, the true next token (if the text has one) with its
    probability and rank, and the top-k next tokens with their probabilities."""
    probs = np.asarray(jax.nn.softmax(jnp.asarray(tr.logits, jnp.float32), axis=-1))
    rows = []
    for t, tok in enumerate(tr.tokens):
        row = {"step": t, "input": show(tok)}
        if t + 1 < len(tr.ids):
            nxt = int(tr.ids[t + 1])
            row["next"] = show(vocab.itos[nxt])
            row["p_next"] = float(probs[t, nxt])
            row["rank_next"] = int((probs[t] > probs[t, nxt]).sum()) + 1
        else:
            row["next"], row["p_next"], row["rank_next"] = "", "", ""
        for r, (i, p) in enumerate(zip(tr.top_ids[t], tr.top_probs[t]), start=1):
            row[f"top{r}"] = show(vocab.itos[int(i)])
            row[f"p{r}"] = float(p)
        rows.append(row)
    return rows


def write_top_csv(rows: list[dict], path) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


GATE_TITLES = {"r": "reset gate r", "z": "update gate z", "n": "candidate n", "h": "output h",
               "i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o",
               "c": "cell state c"}
SIGMOID_GATES = ("r", "z", "i", "f", "o")  # in [0, 1]; the others are tanh outputs in [-1, 1] (c unbounded)


def plot_gate(values, tokens, path, *, title: str = "", units: int | None = None, gate: str = "") -> Path:
    """values [T, H] -> heatmap PNG of units (rows) x time (columns), the tokens along the time axis."""
    from matplotlib.figure import Figure

    values = np.asarray(values)
    if units:
        values = values[:, :units]
    T, H = values.shape
    if gate in SIGMOID_GATES:
        vmin, vmax, cmap = 0.0, 1.0, "viridis"
    else:
        lim = float(max(np.abs(values).max(), 1e-6)) if gate == "c" else 1.0
        vmin, vmax, cmap = -lim, lim, "RdBu_r"
    fig = Figure(figsize=(min(2 + 0.22 * T, 40), min(1.5 + 0.18 * H, 30)), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(values.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(T))
    ax.set_xticklabels([show(t) for t in tokens], fontsize=8, rotation=0 if max(map(len, tokens)) <= 1 else 90)
    ax.set_xlabel("input token (time)")
    ax.set_ylabel("unit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def write_heatmaps(tr: GateTrace, out_dir, *, layers=None, units: int | None = 32) -> list[Path]:
    """One PNG per layer and gate: ``out_dir/layer{l}_{gate}.png``. ``layers``: indices (default all)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L = len(tr.gates)
    layers = list(range(L)) if layers is None else list(layers)
    bad = [l for l in layers if not 0 <= l < L]
    if bad:
        raise RnnlabError(f"layer {bad[0]} is not valid; the model has {L} layer(s): 0..{L - 1}")
    paths = []
    for l in layers:
        for name, v in tr.gates[l].items():
            H = v.shape[-1]
            shown = min(units or H, H)
            title = f"{tr.cell} layer {l}: {GATE_TITLES.get(name, name)} (units 0..{shown - 1} of {H})"
            paths.append(plot_gate(v, tr.tokens, out_dir / f"layer{l}_{name}.png", title=title, units=shown, gate=name))
    return paths
