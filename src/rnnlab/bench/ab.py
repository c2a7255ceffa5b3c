"""A/B benchmark of two git revisions in one sitting: each revision checked out in its own
``git worktree``, the same ``experiments.benchmark`` command run in each in turn (A, B, A, B, ...
so that slow drifts of a shared machine hit both sides alike), then the rows side by side.

    result = run_ab(repo, "HEAD~1", "HEAD", ["--sizes", "S", "--impls", "rnnlab"], rounds=2)
    print(ab_markdown(result))

Each round r gives tokens/s a_r (A) and b_r (B) for every row. Per row, over R rounds:

    A = median_r a_r,  B = median_r b_r,  B/A = B / A,  paired ratios b_r / a_r,
    spread(X) = (max_r x_r - min_r x_r) / median_r x_r   (the same code run again: the noise),
    within noise  <=>  |B/A - 1| <= max(spread(A), spread(B)).

With one round there is no spread and no verdict. Rows are paired by (impl, size, cell, mode) and
their order within that group, so a renamed variant still pairs. The CLI is experiments/ab_benchmark.py.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import RnnlabError


def resolve(repo, rev: str) -> str:
    """The full commit sha of ``rev`` in ``repo``; RnnlabError if it names no commit."""
    r = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RnnlabError(f"{rev!r} is not a git revision of {repo}; pass a commit, branch or tag (e.g. HEAD~1)")
    return r.stdout.strip()


def add_worktree(repo, sha: str, root) -> Path:
    """A detached ``git worktree`` of ``sha`` at ROOT/ab_<sha[:12]> (reused if it is there at that commit)."""
    path = Path(root) / f"ab_{sha[:12]}"
    if path.exists():
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0 and head.stdout.strip() == sha:
            return path
        raise RnnlabError(f"{path} exists and is not a worktree at {sha[:12]}; remove it or pass another --worktrees")
    path.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(path), sha],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RnnlabError(f"git worktree add {path} {sha[:12]} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return path


def remove_worktree(repo, path) -> None:
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)], capture_output=True)


def child_env(worktree) -> dict:
    """This environment with PYTHONPATH=<worktree>/src:<worktree>: the revision's own rnnlab and experiments."""
    return {**os.environ, "PYTHONPATH": f"{worktree}/src:{worktree}"}


def check_imports_from(worktree) -> None:
    """RnnlabError unless ``import rnnlab`` under child_env(worktree) loads the worktree's copy."""
    r = subprocess.run([sys.executable, "-c", "import rnnlab; print(rnnlab.__file__)"], cwd=worktree,
                       env=child_env(worktree), capture_output=True, text=True)
    where = r.stdout.strip()
    if r.returncode != 0 or not Path(where).resolve().is_relative_to(Path(worktree).resolve()):
        raise RnnlabError(f"in {worktree} `import rnnlab` loads {where or r.stderr.strip()[-200:]!r}, "
                          "not the worktree's src/rnnlab")


def run_one(worktree, bench_args, out_dir, log=print, tag="") -> list[dict]:
    """Run ``python -m experiments.benchmark BENCH_ARGS --out OUT_DIR`` in ``worktree``; its row lines
    go to ``log`` (prefixed by ``tag``) as they come. -> the records of OUT_DIR/benchmark.json."""
    cmd = [sys.executable, "-m", "experiments.benchmark", *bench_args, "--out", str(out_dir)]
    with tempfile.TemporaryFile(mode="w+") as err:
        p = subprocess.Popen(cmd, cwd=worktree, env=child_env(worktree), stdout=subprocess.PIPE, stderr=err,
                             text=True)
        for ln in p.stdout:  # the per-row console lines come first, then the markdown: show the rows
            if log and ln.startswith(" ") and ("tok/s" in ln or "ERROR" in ln):
                log(f"{tag}{ln.rstrip()}")
        p.wait()
        err.seek(0)
        tail = err.read().strip().splitlines()[-3:]
    if p.returncode != 0:
        raise RnnlabError(f"the benchmark failed in {worktree} (rc {p.returncode}): {' | '.join(tail)}")
    return json.loads((Path(out_dir) / "benchmark.json").read_text())


def _keyed(records) -> dict:
    """{(impl, size, cell, mode, k): record}, k = the record's order among those of its (impl, size, cell, mode)."""
    out, seen = {}, {}
    for r in records:
        base = (r["impl"], r["size"], r["cell"], r["mode"])
        k = seen.get(base, 0)
        seen[base] = k + 1
        out[base + (k,)] = r
    return out


def _spread(xs):
    return (max(xs) - min(xs)) / statistics.median(xs) if len(xs) > 1 else None


def compare(a_rounds: list[list[dict]], b_rounds: list[list[dict]]) -> list[dict]:
    """Rows of A and B (one list of records per round and side) -> one dict per row: medians, spreads,
    B/A, paired per-round ratios and ``within_noise`` (equations in the module docstring). A row that
    failed or is missing on a side has ``error`` and no numbers."""
    a_keyed, b_keyed = [_keyed(r) for r in a_rounds], [_keyed(r) for r in b_rounds]
    keys = list(dict.fromkeys(k for side in (a_keyed, b_keyed) for rnd in side for k in rnd))
    rows = []
    for key in keys:
        a = [rnd.get(key) for rnd in a_keyed]
        b = [rnd.get(key) for rnd in b_keyed]
        row = {"impl": key[0], "size": key[1], "cell": key[2], "mode": key[3],
               "variant_a": next((r.get("variant", "") for r in a if r), None),
               "variant_b": next((r.get("variant", "") for r in b if r), None)}
        bad = [r.get("error", "missing") if r else "missing" for r in a + b if r is None or "error" in r]
        if bad:
            rows.append({**row, "error": bad[0]})
            continue
        ta, tb = [r["tokens_per_sec"] for r in a], [r["tokens_per_sec"] for r in b]
        ma, mb = statistics.median(ta), statistics.median(tb)
        sa, sb = _spread(ta), _spread(tb)
        ratio = mb / ma
        noise = None if sa is None or sb is None else max(sa, sb)
        row.update(a_tokens_per_sec=ma, b_tokens_per_sec=mb, a_spread=sa, b_spread=sb, b_over_a=ratio,
                   paired=[y / x for x, y in zip(ta, tb)], noise=noise,
                   within_noise=None if noise is None else abs(ratio - 1) <= noise,
                   a_rounds=ta, b_rounds=tb)
        rows.append(row)
    return rows


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def ab_markdown(result: dict) -> str:
    """The side-by-side table of ``run_ab``'s result: training tokens/s of A and B, spreads, B/A."""
    a, b, n = result["a"], result["b"], result["rounds"]
    out = [f"A = {a['rev']} ({a['sha'][:12]}), B = {b['rev']} ({b['sha'][:12]}); {n} rounds A, B alternately; "
           f"command: `python -m experiments.benchmark {' '.join(result['bench_args'])}`", "",
           "| impl | size | cell | mode | variant | A tok/s | A spread | B tok/s | B spread | B/A | B/A by round | "
           "within noise |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        variant = r["variant_a"] if r["variant_a"] == r["variant_b"] else f"{r['variant_a']} / {r['variant_b']}"
        head = f"| {r['impl']} | {r['size']} | {r['cell']} | {r['mode']} | {variant} |"
        if "error" in r:
            out.append(f"{head} error: {r['error']} | | | | | | |")
            continue
        verdict = {None: "-", True: "yes", False: "NO"}[r["within_noise"]]
        out.append(f"{head} {r['a_tokens_per_sec']:,.0f} | {_pct(r['a_spread'])} | {r['b_tokens_per_sec']:,.0f} | "
                   f"{_pct(r['b_spread'])} | {r['b_over_a']:.3f} | {', '.join(f'{x:.3f}' for x in r['paired'])} | "
                   f"{verdict} |")
    return "\n".join(out) + "\n"


def run_ab(repo, rev_a: str, rev_b: str, bench_args, *, rounds: int = 2, out_dir="runs/ab_benchmark",
           worktrees=None, keep: bool = False, log=print) -> dict:
    """Benchmark revisions A and B of ``repo`` alternately, ``rounds`` times each, with the same
    ``bench_args``; write OUT_DIR/ab.json (the result) and OUT_DIR/ab.md (ab_markdown). Worktrees go
    under ``worktrees`` (default: the temp folder /rnnlab_ab) and are removed at the end unless ``keep``.
    -> {a, b: {rev, sha, worktree}, rounds, bench_args, rows: compare(...)}."""
    if rounds < 1:
        raise RnnlabError(f"rounds={rounds} is not valid; need at least 1 (2 or more give a noise estimate)")
    root = Path(worktrees or Path(tempfile.gettempdir()) / "rnnlab_ab")
    out = Path(out_dir).resolve()  # the benchmark runs in the worktree: give it an absolute --out
    sides = {name: {"rev": rev, "sha": resolve(repo, rev)} for name, rev in (("a", rev_a), ("b", rev_b))}
    made = []
    try:
        for s in sides.values():
            existed = (root / f"ab_{s['sha'][:12]}").exists()
            s["worktree"] = str(add_worktree(repo, s["sha"], root))
            if not existed and s["worktree"] not in made:
                made.append(s["worktree"])
            check_imports_from(s["worktree"])
        got = {"a": [], "b": []}
        for i in range(rounds):
            for name in ("a", "b"):
                s = sides[name]
                tag = f"[{name.upper()}{i + 1} {s['sha'][:8]}] "
                got[name].append(run_one(s["worktree"], bench_args, out / f"{name}{i + 1}", log=log, tag=tag))
    finally:
        if not keep:
            for path in made:
                remove_worktree(repo, path)
    result = {"a": sides["a"], "b": sides["b"], "rounds": rounds, "bench_args": list(bench_args),
              "rows": compare(got["a"], got["b"])}
    out.mkdir(parents=True, exist_ok=True)
    (out / "ab.json").write_text(json.dumps(result, indent=1))
    (out / "ab.md").write_text(ab_markdown(result))
    return result
