"""notebooks/gates.ipynb runs headless (nbclient) on a tiny model (RNNLAB_NB_TINY=1) and prints
what it promises: the step-by-step table, greedy = argmax, and the two GRU conventions' gate check."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "gates.ipynb"


def test_gates_notebook_runs_on_a_tiny_model(monkeypatch, data_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs must be stripped in git"
    monkeypatch.setenv("RNNLAB_NB_TINY", "1")
    monkeypatch.setenv("RNNLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "gru: 1 x 32 units, vocab of 28" in text
    # one row per character of "traveller you", each with 5 probabilities in descending order
    rows = [ln for ln in text.splitlines() if re.match(r"^\s+\S \|", ln)]
    assert len(rows) == len("traveller you")
    for ln in rows:
        ps = [float(p) for p in re.findall(r"\((\d\.\d{3})\)", ln)]
        assert len(ps) == 5 and ps == sorted(ps, reverse=True) and sum(ps) <= 1.001
    # the z table: 8 units x 13 steps, all in [0, 1]
    zrows = [ln for ln in text.splitlines() if re.match(r"^\s+[0-7]( +\d\.\d\d){13}$", ln)]
    assert len(zrows) == 8
    # z near 1 keeps h = 0.5 in both conventions; z near 0 gives the candidate
    for name in ("gru", "gru_cho"):
        keep = re.search(rf"^{name} +z ~ 0\.99\d\d: h' = \[0\.5 0\.5 0\.5 0\.5\]", text, re.M)
        assert keep, text
        take = re.search(rf"^{name} +z ~ 0\.000\d: h' = \[([^\]]*)\].*candidate n = \[([^\]]*)\]", text, re.M)
        assert take and take.group(1).split() == take.group(2).split()
    # sampling frequencies follow softmax(logits / T): T = 0.5 row vs 2000 draws at T = 0.5
    p05 = [float(x) for x in re.search(r"^T=0\.5 +(.*)$", text, re.M).group(1).split()[:4]]
    f05 = [float(x.split("=")[1]) for x in re.search(r"^2000 draws at T=0\.5: (.*)$", text, re.M).group(1).split()]
    assert max(abs(a - b) for a, b in zip(p05, f05)) < 0.05
