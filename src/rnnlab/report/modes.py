"""The teacher forcing vs scheduled sampling study's table (configs/tf_vs_ss.py): one row per
cell x training mode (x schedule) with the free-running metrics (see ``free_running``), and the
oracle's own row. Moved here from oracle.py unchanged; summary.json files that cannot be read are
listed after the table (never averaged), where they used to raise.
"""
from __future__ import annotations

import math
from pathlib import Path

from .. import RnnlabError
from .runs_io import read_json

MODE_ORDER = ("teacher_forcing", "scheduled_sampling", "always_sampling", "soft_sampling")
SCHEDULE_ORDER = ("constant", "linear", "exponential", "inverse_sigmoid")


def _mean_std(xs) -> str:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return "-"
    m = sum(xs) / len(xs)
    if len(xs) == 1:
        return f"{m:.3f}"
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return f"{m:.3f} ± {sd:.3f}"


def _read_study_run(path: Path):
    """-> (summary, schedule kind, None) of a finished run with free-running metrics, (None, None, None) for
    any other run, or (None, None, reason) when its summary.json or config.json cannot be used."""
    s, why = read_json(path)
    if why or not isinstance(s, dict):
        return None, None, f"summary.json {why or 'is not a JSON object'}"
    if s.get("status") != "finished" or "exposure_gap" not in s:
        return None, None, None
    cfg, why = read_json(path.parent / "config.json")
    if why:
        return None, None, f"config.json {why}"
    try:
        kind = cfg["train"]["schedule"]["kind"] if s["train_mode"] in ("scheduled_sampling", "soft_sampling") else ""
        ok = (isinstance(s["test_ppl"], (int, float)) and isinstance(s["exposure_gap"], dict)
              and isinstance(s["cell"], str) and isinstance(kind, str))
    except (KeyError, TypeError):
        ok = False
    if not ok:
        return None, None, "summary.json or config.json lacks (or mistypes) cell, train_mode, test_ppl, exposure_gap or train.schedule.kind"
    return s, kind, None


def modes_table(workdir, k: int | None = None) -> str:
    """Markdown table of a training-modes study (every finished run under ``workdir``): one row per
    cell x mode (x schedule), mean ± std over seeds of teacher-forced test ppl, NLL-test, NLL-oracle,
    the exposure-bias gap and its KL form at k (default: the largest k) and distinct-2; plus the
    oracle's own row (its exact test NLL, its entropy, its gap); then the unreadable runs, if any."""
    rows: dict = {}
    oracle_rows = []
    bad = []
    for path in sorted(Path(workdir).rglob("summary.json")):
        s, kind, why = _read_study_run(path)
        if why:
            bad.append(f"- {path.parent}: {why}")
        if s is None:
            continue
        rows.setdefault((s["cell"], s["train_mode"], kind), []).append(s)
        oracle_rows.append(s)
    tail = ["", f"unreadable runs ({len(bad)}; left out of every mean):", *bad] if bad else []
    if not rows:
        raise RnnlabError(f"no finished run with free-running metrics under {workdir}; run the study first "
                          f"(configs/tf_vs_ss.py turns eval.free_running on)"
                          + (f"; {len(bad)} unreadable: {bad[0][2:]}" if bad else ""))
    ks = sorted(int(x) for x in next(iter(rows.values()))[0]["exposure_gap"])
    k = str(max(ks) if k is None else k)
    cells = [c for c in ("rnn", "rnn_relu", "gru", "gru_cho", "lstm") if any(r[0] == c for r in rows)]
    cells += sorted({r[0] for r in rows} - set(cells))
    order = lambda key: (cells.index(key[0]), MODE_ORDER.index(key[1]) if key[1] in MODE_ORDER else 9,  # noqa: E731
                         SCHEDULE_ORDER.index(key[2]) if key[2] in SCHEDULE_ORDER else -1)
    head = ["cell", "mode", "schedule", "seeds", "test ppl", "NLL-test", "NLL-oracle", f"gap k={k}",
            f"gap KL k={k}", "distinct-2"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    get = lambda rs, f: [f(r) for r in rs]  # noqa: E731
    for key in sorted(rows, key=order):
        rs = rows[key]
        lines.append("| " + " | ".join([key[0], key[1], key[2] or "-", str(len(rs)),
                                        _mean_std(get(rs, lambda r: r["test_ppl"])),
                                        _mean_std(get(rs, lambda r: r.get("nll_test"))),
                                        _mean_std(get(rs, lambda r: r.get("nll_oracle"))),
                                        _mean_std(get(rs, lambda r: r["exposure_gap"].get(k))),
                                        _mean_std(get(rs, lambda r: r.get("exposure_gap_kl", {}).get(k))),
                                        _mean_std(get(rs, lambda r: r.get("distinct_n", {}).get("2")))]) + " |")
    o = oracle_rows[0]
    if "oracle_test_nll" in o:
        lines.append("| " + " | ".join(["oracle", "(the source)", "-", "-", f"{math.exp(o['oracle_test_nll']):.3f}",
                                        f"{o['oracle_test_nll']:.3f}", f"{o['oracle_entropy']:.3f} (entropy)",
                                        _mean_std([r.get("oracle_exposure_gap", {}).get(k) for r in oracle_rows]),
                                        "0", _mean_std([r.get("distinct_n_data", {}).get("2") for r in oracle_rows])])
                     + " |")
    return "\n".join(lines + tail)
