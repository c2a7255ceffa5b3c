"""Notebooks run headless (nbclient) on small run directories made here, and are committed with
their outputs stripped.

To add a notebook test: make its inputs (a fixture), then
``nb = execute_notebook(NOTEBOOKS / "x.ipynb", env={"VAR": str(path)})`` and check its outputs with
``outputs(nb, "text/plain")`` / ``outputs(nb, "image/png")``; ``test_notebooks_are_stripped``
already covers every notebook in notebooks/.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from rnnlab import report
from rnnlab.config import base_config
from rnnlab.train import train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute_notebook(path: Path, env: dict | None = None, timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in a fresh python3 kernel whose working directory is the
    notebook's folder and whose environment has ``env`` added; -> the executed notebook (a cell
    error raises nbclient's CellExecutionError with the traceback)."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})  # the kernel process inherits this environment
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs(nb, mime: str) -> list[str]:
    """The ``mime`` data of every output (display_data / execute_result), plus printed text for
    ``mime == "stream"``, in cell order."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if mime == "stream" and o.output_type == "stream":
                out.append(o.text)
            elif mime in o.get("data", {}):
                out.append(o.data[mime])
    return out


def tiny_config(cell: str, seed: int):
    c = base_config()
    c.data.name = "reber"
    c.data.num_train, c.data.num_valid, c.data.num_test = 2_400, 400, 400
    c.model.cell, c.train.seed = cell, seed
    c.model.hidden_size, c.model.embed_size, c.model.num_layers = 8, 4, 1
    c.train.optimizer, c.train.lr = "adam", 0.02
    c.train.batch_size, c.train.bptt, c.train.epochs = 8, 10, 2
    c.train.log_every, c.train.eval_every, c.train.progress = 5, 10, False
    c.eval.batch_size = 4
    if "free_running" in c.eval:
        c.eval.free_running = False
    c.wandb.mode = "disabled"
    return c


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """2 cells x 2 seeds of a tiny embedded-Reber study, trained for real (a few seconds each)."""
    root = tmp_path_factory.mktemp("study")
    for cell in ("rnn", "lstm"):
        for seed in (0, 1):
            train_and_evaluate(tiny_config(cell, seed), root / f"{cell}_s{seed}")
    return root


def test_compare_cells_notebook(tiny_study, tmp_path):
    out = tmp_path / "report"
    nb = execute_notebook(NOTEBOOKS / "compare_cells.ipynb",
                          env={"RNNLAB_RUNS_DIR": str(tiny_study), "RNNLAB_REPORT_DIR": str(out)})
    rows, table = report.build_table(tiny_study)
    assert [(r["model.cell"], r["n"]) for r in rows] == [("rnn", 2), ("lstm", 2)]
    assert outputs(nb, "text/markdown") == [table]  # the notebook shows the report's table
    text = "".join(outputs(nb, "stream"))
    assert f"4 runs in {tiny_study}" in text
    for r in rows:
        assert f"test ppl {r['test_ppl_mean']:.3f}" in text
    pngs = outputs(nb, "image/png")
    assert len(pngs) == 2  # val ppl vs step and vs wall time
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"reber_val_ppl_vs_{x}.{e}" for x in ("step", "wall") for e in ("png", "svg"))
    assert (out / "table.md").read_text() == table


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stripped(path):
    """Committed notebooks carry no outputs or execution counts (results live in run directories)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{path.name} has outputs"


def test_gates_notebook(data_dir):
    """gates.ipynb on a tiny GRU trained for a few steps (RNNLAB_NB_TINY=1): the step-by-step table,
    the z table, sampling frequencies vs softmax(logits / T), and both GRU conventions' gate check."""
    import re

    nb = execute_notebook(NOTEBOOKS / "gates.ipynb", env={"RNNLAB_NB_TINY": "1", "RNNLAB_DATA_DIR": str(data_dir)})
    text = "".join(outputs(nb, "stream"))
    assert "gru: 1 x 32 units, vocab of 28" in text and len(outputs(nb, "image/png")) == 1
    rows = [ln for ln in text.splitlines() if re.match(r"^\s+\S \|", ln)]  # one per character of "traveller you"
    assert len(rows) == len("traveller you")
    for ln in rows:
        ps = [float(p) for p in re.findall(r"\((\d\.\d{3})\)", ln)]
        assert len(ps) == 5 and ps == sorted(ps, reverse=True) and sum(ps) <= 1.001
    assert len([ln for ln in text.splitlines() if re.match(r"^\s+[0-7]( +[01]\.\d\d){13}$", ln)]) == 8  # z: 8 units x 13 steps
    for name in ("gru", "gru_cho"):  # z near 1 keeps h = 0.5; z near 0 gives the candidate n
        assert re.search(rf"^{name} +z ~ 0\.99\d\d: h' = \[0\.5 0\.5 0\.5 0\.5\]", text, re.M), text
        take = re.search(rf"^{name} +z ~ 0\.000\d: h' = \[([^\]]*)\].*candidate n = \[([^\]]*)\]", text, re.M)
        assert take and take.group(1).split() == take.group(2).split()
    p05 = [float(x) for x in re.search(r"^T=0\.5 +(.*)$", text, re.M).group(1).split()[:4]]
    f05 = [float(x.split("=")[1]) for x in re.search(r"^2000 draws at T=0\.5: (.*)$", text, re.M).group(1).split()]
    assert max(abs(a - b) for a, b in zip(p05, f05)) < 0.05  # 2000 draws follow softmax(logits / 0.5)
