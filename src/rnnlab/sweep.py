"""Studies: expand a config's ``get_sweep()`` into members and run them, one run directory each.

A study is a config file with ``get_config()`` and ``get_sweep()``::

    def get_sweep():
        return {"product": {"model.cell": ["rnn", "gru", "lstm"], "train.seed": [0, 1]},
                "zip": {"train.mode": ["teacher_forcing", "scheduled_sampling"],
                        "train.schedule.kind": ["constant", "inverse_sigmoid"]}}

Members = the grid product of the ``product`` lists x the tuples of the (equal-length) ``zip``
lists; both keys are optional; fields are dotted config paths. Each member is the base config
(with the command-line ``--config.a.b=value`` overrides already applied) plus its own overrides,
trained by ``train.train_and_evaluate`` in ``<workdir>/<name>``, the name made from its overrides
(``cell=gru,seed=1``). A command-line override of a swept field pins it: ``--config.train.seed=0``
runs only the seed-0 members (that is also how a W&B agent runs one member, see
``wandb_sweep_spec``).

Re-running a study skips finished members (summary.json status ``finished``), resumes unfinished
ones from their checkpoints and retries failed ones. A member that raises is recorded as failed
(summary.json with status ``failed`` and the one-line error, the traceback in ``error.txt``) and
the others go on. ``<workdir>/sweep.json`` indexes the members: name, overrides, status.

With ``vmap_seeds=True`` the members that differ only in ``train.seed`` are trained as one
compiled program (``multiseed.train_seeds``), each still writing its own run directory.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ml_collections

from . import RnnlabError
from .config import to_dict, validate
from .tracking import _jsonable, write_json

SWEEP_KEYS = ("product", "zip")
SEED_FIELD = "train.seed"
INDEX_FILE = "sweep.json"


@dataclass
class Member:
    name: str  # run directory name under the study's workdir
    overrides: dict  # dotted field -> value, in get_sweep order (product fields, then zip fields)
    config: Any = field(repr=False)  # the member's full ConfigDict


# ----------------------------------------------------------------------------- loading
def load_sweep(config_file) -> dict:
    """``get_sweep()`` of a config file (a python file, as for --config)."""
    path = Path(str(config_file).split(":")[0])
    if not path.is_file():
        raise RnnlabError(f"config file {str(config_file)!r} not found; pass --config=configs/<name>.py (see configs/)")
    spec = importlib.util.spec_from_file_location(f"_rnnlab_study_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise RnnlabError(f"could not load {path}: {type(e).__name__}: {_first_line(e)}") from None
    if not hasattr(module, "get_sweep"):
        raise RnnlabError(f"{path} has no get_sweep(); add one (see configs/quickstart.py) "
                          f"or train a single run with experiments.train")
    try:
        return module.get_sweep()
    except Exception as e:
        raise RnnlabError(f"{path}: get_sweep() raised {type(e).__name__}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def error_line(e: BaseException) -> str:
    """One line for a failed member: the RnnlabError text, else ``Type: first line``."""
    return _first_line(e) if isinstance(e, RnnlabError) else f"{type(e).__name__}: {_first_line(e)}"


# ----------------------------------------------------------------------------- config fields
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


# ----------------------------------------------------------------------------- expansion
def check_sweep(sweep, cfg) -> tuple[dict, dict]:
    """Validate the shape of a get_sweep() dict -> (product, zip) as {field: list}."""
    if not isinstance(sweep, dict) or set(sweep) - set(SWEEP_KEYS):
        got = sorted(sweep) if isinstance(sweep, dict) else type(sweep).__name__
        raise RnnlabError(f"get_sweep() must return a dict with keys 'product' and/or 'zip' "
                          f"(each {{'a.b': [values]}}); got {got}")
    out = []
    for key in SWEEP_KEYS:
        d = sweep.get(key) or {}
        if not isinstance(d, dict):
            raise RnnlabError(f"get_sweep()[{key!r}] must be a dict {{'a.b': [values]}}; got {type(d).__name__}")
        lists = {}
        for f, values in d.items():
            if not isinstance(f, str):
                raise RnnlabError(f"get_sweep()[{key!r}] has key {f!r}; keys are dotted config fields like 'model.cell'")
            _parent(cfg, f, "get_sweep()")
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise RnnlabError(f"get_sweep()[{key!r}][{f!r}] must be a non-empty list of values; got {values!r}")
            lists[f] = list(values)
        out.append(lists)
    product, zipped = out
    both = sorted(set(product) & set(zipped))
    if both:
        raise RnnlabError(f"get_sweep(): {', '.join(both)} is in both 'product' and 'zip'; put each field in one")
    lengths = {f: len(v) for f, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        raise RnnlabError(f"get_sweep()['zip'] lists must have equal lengths; got "
                          + ", ".join(f"{f}: {n}" for f, n in lengths.items()))
    return product, zipped


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt(x) for x in v)
    return str(v)


def _safe(text: str) -> str:
    """Filesystem-safe: letters, digits and . _ - + = , only; no leading dot."""
    s = re.sub(r"[^A-Za-z0-9._+=,-]", "_", text)
    return ("_" + s[1:]) if s.startswith(".") else s


def short_names(fields: list[str]) -> dict:
    """Field -> the shortest dotted suffix that is unique among ``fields`` (model.cell -> cell)."""
    out = {}
    for f in fields:
        parts = f.split(".")
        for k in range(1, len(parts) + 1):
            cand = ".".join(parts[-k:])
            if sum(1 for g in fields if g == cand or g.endswith("." + cand)) == 1:
                out[f] = cand
                break
        else:
            out[f] = f
    return out


def label(overrides: dict, names: dict) -> str:
    """``cell=gru,seed=1`` (filesystem-safe, at most 200 characters)."""
    text = ",".join(f"{names[f]}={_fmt(v)}" for f, v in overrides.items()) or "default"
    text = _safe(text)
    if len(text) > 200:
        text = text[:180] + "-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return text


def _unique(labels: list[str], keys: list) -> list[str]:
    """Make labels unique (two values that look alike once made filesystem-safe get a hash suffix)."""
    counts = {}
    for lb in labels:
        counts[lb] = counts.get(lb, 0) + 1
    return [lb if counts[lb] == 1 else f"{lb}-{hashlib.sha1(repr(k).encode()).hexdigest()[:8]}"
            for lb, k in zip(labels, keys)]


def zip_labels(zipped: dict, names: dict | None = None) -> list[str]:
    """One label per zipped tuple (``mode=scheduled_sampling,kind=linear``): the W&B parameter values."""
    if not zipped:
        return []
    names = names or short_names(list(zipped))
    n = len(next(iter(zipped.values())))
    tuples = [{f: zipped[f][i] for f in zipped} for i in range(n)]
    return _unique([label(t, names) for t in tuples], tuples)


def _same(a, b) -> bool:
    """Equal as config values (1 == 1.0, but True is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _pin(product: dict, zipped: dict, cfg, pinned, zip_choice: str | None):
    """Apply command-line pins: a pinned product field keeps only the command-line value; pinned
    zip fields (or ``zip_choice``, a zip label) keep only the matching tuples."""
    product = dict(product)
    zl = zip_labels(zipped, short_names(list(product) + list(zipped)))
    n = len(zl)
    keep = list(range(n))
    for f in pinned:
        if f in product:
            v = get_field(cfg, f)
            same = [x for x in product[f] if _same(x, v)]
            product[f] = [same[0] if same else v]
        elif f in zipped:
            v = get_field(cfg, f)
            keep = [i for i in keep if _same(zipped[f][i], v)]
            if not keep:
                raise RnnlabError(f"--config.{f}={v!r} matches none of get_sweep()['zip'][{f!r}] "
                                  f"({', '.join(map(_fmt, zipped[f]))}); zipped fields can only be pinned to those values")
    if zip_choice is not None:
        if zip_choice not in zl:
            raise RnnlabError(f"--zip={zip_choice!r} is not one of the study's zipped tuples: {', '.join(zl) or 'none'}")
        keep = [i for i in keep if zl[i] == zip_choice]
        if not keep:
            raise RnnlabError(f"--zip={zip_choice!r} contradicts a --config override of a zipped field")
    zipped = {f: [vals[i] for i in keep] for f, vals in zipped.items()}
    return product, zipped


def expand(cfg, sweep: dict, *, pinned=(), zip_choice: str | None = None) -> list[Member]:
    """The members of a study: base config ``cfg`` x get_sweep() ``sweep``. ``pinned``: dotted
    fields set on the command line (their value in ``cfg`` wins over the sweep's lists)."""
    product, zipped = check_sweep(sweep, cfg)
    names = short_names(list(product) + list(zipped))
    product, zipped = _pin(product, zipped, cfg, pinned, zip_choice)
    n_zip = len(next(iter(zipped.values()))) if zipped else 1
    combos = []
    for values in itertools.product(*product.values()):
        for i in range(n_zip):
            ov = dict(zip(product, values))
            ov.update({f: vals[i] for f, vals in zipped.items()})
            combos.append(ov)
    labels = _unique([label(ov, names) for ov in combos], combos)
    members = []
    for name, ov in zip(labels, combos):
        c = _copy(cfg)
        for f, v in ov.items():
            set_field(c, f, v)
        try:
            validate(c)
        except RnnlabError as e:
            raise RnnlabError(f"study member {name}: {e}") from None
        members.append(Member(name, ov, c))
    return members


def _copy(cfg):
    import copy

    return copy.deepcopy(cfg)


def cli_fields(argv) -> list[str]:
    """Dotted fields overridden on the command line (``--config.a.b=v``, ``--config.a.b v``,
    ``--noconfig.a.b``)."""
    out = []
    for a in argv:
        m = re.match(r"^--(?:no)?config\.([A-Za-z0-9_.]+)(=|$)", a)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


# ----------------------------------------------------------------------------- status and index
def member_status(run_dir) -> dict:
    """{'status': finished | failed | diverged | running (another process holds it) | partial (has a
    checkpoint) | pending, and the summary's key numbers}."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if path.exists():
        try:
            s = json.loads(path.read_text())
        except json.JSONDecodeError:
            s = {}
        if s.get("status") == "finished":
            return {"status": "finished", **{k: s[k] for k in ("test_ppl", "best_val_ppl", "wall_s") if k in s}}
        if s.get("status") in ("failed", "diverged"):  # diverged: non-finite loss (faults.py), not retried
            return {"status": s["status"], "error": s.get("error", "")}
    if _held_elsewhere(run_dir):
        return {"status": "running"}
    if _has_checkpoint(run_dir):
        return {"status": "partial"}
    return {"status": "pending"}


def write_index(workdir, members: list[Member], *, config_file: str, cli: dict, sweep: dict, vmap_seeds: bool,
                extra: dict | None = None, running=()) -> dict:
    """Write <workdir>/sweep.json: the members with their status from disk (``running`` while this
    process trains them; a killed sweep leaves that, the next run recomputes it)."""
    index = {
        "study": Path(workdir).name, "config_file": config_file, "cli_overrides": cli, "sweep": sweep,
        "vmap_seeds": vmap_seeds, "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "members": [{"name": m.name, "dir": m.name, "overrides": m.overrides, **member_status(Path(workdir) / m.name),
                     **((extra or {}).get(m.name, {})), **({"status": "running"} if m.name in running else {})}
                    for m in members],
    }
    path = Path(workdir) / INDEX_FILE
    tmp = path.with_name(f"{INDEX_FILE}.{os.getpid()}.tmp")  # several agents may share the study directory
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True, default=_jsonable))
    os.replace(tmp, path)
    return index


def record_failure(run_dir, member: Member, e: BaseException) -> str:
    """summary.json (status failed, the one-line error), error.txt (the traceback), and config.json
    when training never wrote it (so reports list the failed run)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    msg = error_line(e)
    if member_status(run_dir)["status"] == "diverged":  # training wrote summary.json (status diverged): keep it
        return msg
    if not (run_dir / "config.json").exists():
        write_json(run_dir / "config.json", to_dict(member.config))
    c = member.config
    write_json(run_dir / "summary.json", {
        "status": "failed", "error": msg, "run_name": member.name, "overrides": member.overrides,
        "cell": c.model.cell, "train_mode": c.train.mode, "seed": c.train.seed, "data": c.data.name,
        "hidden_size": c.model.hidden_size, "num_layers": c.model.num_layers,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    (run_dir / "error.txt").write_text("".join(traceback.format_exception(type(e), e, e.__traceback__)))
    return msg


def _has_checkpoint(run_dir) -> bool:
    latest = Path(run_dir) / "checkpoints" / "latest"
    return latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())


def _stale_failure(run_dir) -> bool:
    """A failed member with no checkpoint: nothing of it is worth keeping."""
    return member_status(run_dir)["status"] == "failed" and not _has_checkpoint(run_dir)


def _clear_failure(run_dir) -> None:
    """Before a retry: drop the failed summary (so a killed retry does not look failed), and the
    config.json too when there is no checkpoint it would have to match."""
    run_dir = Path(run_dir)
    if member_status(run_dir)["status"] != "failed":
        return
    if not _has_checkpoint(run_dir):
        (run_dir / "config.json").unlink(missing_ok=True)
    (run_dir / "summary.json").unlink()


# ----------------------------------------------------------------------------- running
def _groups(members: list[Member], vmap_seeds: bool) -> list[list[Member]]:
    """Members in order; with vmap_seeds, those that differ only in train.seed form one group."""
    if not vmap_seeds:
        return [[m] for m in members]
    groups: dict = {}
    for m in members:
        key = repr(sorted((f, repr(v)) for f, v in m.overrides.items() if f != SEED_FIELD))
        groups.setdefault(key, []).append(m)
    return list(groups.values())


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_sweep(cfg, workdir, sweep: dict, *, config_file: str = "", pinned=(), zip_choice: str | None = None,
              vmap_seeds: bool = False, say: Callable[[str], None] = _say,
              train_fn: Callable | None = None) -> dict:
    """Run every member of the study (see the module docstring), or those the command line pins;
    returns the sweep.json index (every member of the study) plus ``selected``: the names run here.
    ``train_fn(cfg, workdir, run_name=, config_file=)`` defaults to ``train.train_and_evaluate``."""
    from .train import check_workdir_config

    workdir = Path(workdir)
    members = expand(cfg, sweep, pinned=pinned, zip_choice=zip_choice)
    listed = _study_members(cfg, sweep, members)
    # Refuse a study directory whose runs hold another config before training anything (a member
    # that failed before its first checkpoint is retried with whatever config the command gives).
    for m in members:
        if not _stale_failure(workdir / m.name):
            check_workdir_config(workdir / m.name, m.config, write=False)
    if train_fn is None:
        from .train import train_and_evaluate as train_fn
    workdir.mkdir(parents=True, exist_ok=True)
    cli = {f: get_field(cfg, f) for f in pinned}
    for m in members:  # W&B: group = the study (a run-neutral field); name = the member's run name
        m.config.wandb.group = cfg.wandb.group or workdir.name
    extra: dict = {}

    def index(running=()):
        return write_index(workdir, listed, config_file=config_file, cli=cli, sweep=sweep, vmap_seeds=vmap_seeds,
                           extra=extra, running={m.name for m in running})

    before = {m.name: member_status(workdir / m.name)["status"] for m in members}
    index()
    n = len(members)
    say(f"study {workdir}: {n} members; " + ", ".join(f"{sum(1 for s in before.values() if s == k)} {k}"
                                                        for k in ("finished", "partial", "failed", "diverged",
                                                                  "pending")
                                                        if any(s == k for s in before.values())))
    done = 0
    for group in _groups(members, vmap_seeds):
        todo = [m for m in group if before[m.name] != "finished"]
        for m in group:
            if before[m.name] == "finished":
                done += 1
                say(f"[{done}/{n}] {m.name}: finished earlier, skipped")
        held = {m.name: _lock(workdir / m.name) for m in todo}
        for m in todo:
            if held[m.name]:
                done += 1
                say(f"[{done}/{n}] {m.name}: being trained by another process ({held[m.name]}), skipped")
        todo = [m for m in todo if not held[m.name]]
        for m in list(todo):  # the status may have changed while another process held the member
            before[m.name] = member_status(workdir / m.name)["status"]
            if before[m.name] == "finished":
                done += 1
                say(f"[{done}/{n}] {m.name}: finished by another process, skipped")
                _unlock(workdir / m.name)
                todo.remove(m)
        if not todo:
            continue
        try:
            done = _run_group(todo, workdir, before, vmap_seeds, done, n, say, train_fn, config_file, index, extra)
        finally:
            for m in todo:
                _unlock(workdir / m.name)
        index()
    return {**index(), "selected": [m.name for m in members]}


def _run_group(todo, workdir, before, vmap_seeds, done, n, say, train_fn, config_file, index, extra) -> int:
    """Train the members of one group (this process holds their locks); returns the new count done."""
    for m in todo:
        _clear_failure(workdir / m.name)
    verb = {m.name: "resuming" if before[m.name] == "partial" else "training" for m in todo}
    t0 = time.perf_counter()
    if vmap_seeds and len(todo) > 1:
        say(f"[{done + 1}-{done + len(todo)}/{n}] " + ", ".join(m.name for m in todo)
            + f": {len(todo)} seeds as one vmapped program")
        from .multiseed import train_seeds

        seeds = {m.config.train.seed: m for m in todo}
        index(running=todo)
        try:
            out = train_seeds(todo[0].config, {s: workdir / m.name for s, m in seeds.items()},
                              run_names={s: m.name for s, m in seeds.items()}, config_file=config_file)
            for s, m in seeds.items():
                extra[m.name] = {"vmapped_with": [x.name for x in todo]}
                r = out[s]
                say(f"  {m.name}: " + (f"test ppl {r.get('test_ppl', math.nan):.4f}" if r.get("status") == "finished"
                                       else f"{str(r.get('status', '?')).upper()}: {r.get('error', '')}"))
        except Exception as e:
            for m in todo:
                msg = record_failure(workdir / m.name, m, e)
            say(f"  FAILED ({len(todo)} seeds): {msg}")
        say(f"  {len(todo)} seeds in {time.perf_counter() - t0:.1f} s")
        return done + len(todo)
    for m in todo:
        done += 1
        say(f"[{done}/{n}] {m.name}: {verb[m.name]}")
        index(running=[m])
        try:
            s = train_fn(m.config, workdir / m.name, run_name=m.name, config_file=config_file)
            say(f"[{done}/{n}] {m.name}: test ppl {s.get('test_ppl', math.nan):.4f}, "
                f"{s.get('wall_s', math.nan):.1f} s")
        except Exception as e:
            msg = record_failure(workdir / m.name, m, e)
            if member_status(workdir / m.name)["status"] == "diverged":
                say(f"[{done}/{n}] {m.name}: DIVERGED: {msg}")
            else:
                say(f"[{done}/{n}] {m.name}: FAILED: {msg} (traceback in {workdir / m.name / 'error.txt'})")
        index()
    return done


# A member is trained by one process at a time: <run dir>/.sweep.lock holds "host pid" while it
# trains (a second sweep on the same study, or W&B agents sharing a file system, skip it). A lock
# whose process is gone (same host) is taken over; one from another host must be removed by hand.
LOCK_FILE = ".sweep.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock(run_dir) -> str | None:
    """Claim a member for this process: None when claimed, else who holds it."""
    import socket

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path, host = run_dir / LOCK_FILE, socket.gethostname()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                other_host, pid = path.read_text().split()
                pid = int(pid)
            except (OSError, ValueError):
                other_host, pid = host, -1  # torn or unreadable: treat as stale
            if other_host == host and (pid <= 0 or not _alive(pid)):
                path.unlink(missing_ok=True)
                continue
            return f"host {other_host} pid {pid}; remove {path} if it is gone"
        with os.fdopen(fd, "w") as f:
            f.write(f"{host} {os.getpid()}")
        return None
    return f"another process; remove {path} if it is gone"


def _held_elsewhere(run_dir) -> bool:
    """Another live process holds this member's lock."""
    import socket

    try:
        host, pid = (Path(run_dir) / LOCK_FILE).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False
    return host != socket.gethostname() or (pid != os.getpid() and pid > 0 and _alive(pid))


def _unlock(run_dir) -> None:
    path = Path(run_dir) / LOCK_FILE
    try:
        if path.read_text().split()[-1] == str(os.getpid()):
            path.unlink()
    except (OSError, IndexError):
        pass


def _study_members(cfg, sweep, selected: list[Member]) -> list[Member]:
    """Every member of the study (for sweep.json), even when the command line pins a subset."""
    try:
        everyone = expand(cfg, sweep)
    except RnnlabError:
        return selected
    names = {m.name for m in everyone}
    return everyone + [m for m in selected if m.name not in names]


# ----------------------------------------------------------------------------- table
TABLE_COLUMNS = ("name", "cell", "train_mode", "seed", "num_params", "test_ppl", "optimal_ppl", "wall_s", "status")


def summaries(workdir, index: dict | None = None) -> list[dict]:
    """Each member's summary.json (or its status) in study order."""
    workdir = Path(workdir)
    index = index or json.loads((workdir / INDEX_FILE).read_text())
    out = []
    for m in index["members"]:
        path = workdir / m["dir"] / "summary.json"
        s = json.loads(path.read_text()) if path.exists() else {}
        out.append({"name": m["name"], **s, "status": s.get("status", m.get("status", "pending"))})
    return out


def table(workdir, index: dict | None = None) -> str:
    """The study's comparison table: ``report.build_table`` (mean +- std over seeds) when the
    report module is there, else one row per member (``simple_table``)."""
    try:
        from .report import build_table
    except ImportError:
        build_table = None
    if build_table is not None:
        try:
            return build_table(str(workdir))[1]
        except RnnlabError:
            pass
    return simple_table(summaries(workdir, index))


def simple_table(rows: list[dict]) -> str:
    """A markdown table of the members (cell, mode, seed, #params, test ppl, optimal ppl, wall s)."""
    def cell(r, k):
        v = r.get(k, "")
        if isinstance(v, float):
            return f"{v:.1f}" if k == "wall_s" else f"{v:.4f}"
        if k == "status" and v in ("failed", "diverged"):
            return f"{v}: {r.get('error', '')}"[:80]
        return str(v)

    cols = [c for c in TABLE_COLUMNS if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- W&B sweeps
def wandb_sweep_spec(cfg, sweep: dict, *, config_file: str, workdir: str, pinned=(), program: str = "experiments/sweep.py",
                     zip_choice: str | None = None) -> dict:
    """A W&B sweep spec (method grid) that runs the same study with ``wandb sweep`` + ``wandb agent``.

    Parameters are the swept config fields, named ``config.model.cell`` etc., so the agent's
    ``${args}`` expands to ``--config.model.cell=gru --config.train.seed=1``: absl's override
    syntax. The zipped fields are one categorical parameter ``zip`` whose values label the tuples
    (``mode=scheduled_sampling,kind=linear``): a grid over them separately would pair values that
    the study never pairs. The command runs ``experiments/sweep.py`` (not experiments/train.py):
    given those overrides it pins every swept field, so it trains exactly that one member with
    ``train_and_evaluate`` in the same run directory ``<workdir>/<member name>`` a local sweep
    would use (skip / resume / failure records included); W&B's macros expand whole arguments
    only, so a per-member --workdir could not be spelled in the command itself. Command-line
    overrides of non-swept fields are repeated in the command, and ``--config.wandb.mode=online``
    unless the command line sets wandb.mode."""
    product, zipped = check_sweep(sweep, cfg)
    product, zipped = _pin(product, zipped, cfg, [f for f in pinned if f in product or f in zipped], zip_choice)
    params = {f"config.{f}": {"values": [_yaml_value(v) for v in vals]} for f, vals in product.items()}
    if zipped:
        params["zip"] = {"values": zip_labels(zipped, short_names(list(product) + list(zipped)))}
    fixed = [f for f in pinned if f not in product and f not in zipped]
    command = ["${env}", "${interpreter}", "${program}", f"--config={config_file}", f"--workdir={workdir}"]
    command += [f"--config.{f}={_fmt_flag(get_field(cfg, f))}" for f in fixed]
    if "wandb.mode" not in pinned:
        command += ["--config.wandb.mode=online"]  # an agent's runs must report to the sweep
    command += ["${args}"]
    n = math.prod(len(v["values"]) for v in params.values()) if params else 1
    desc = f"rnnlab study {Path(workdir).name} from {config_file}: {n} members (grid)"
    if zipped:
        desc += "; zip = " + "; ".join(f"{lb}" for lb in params["zip"]["values"])
    return {"name": Path(workdir).name, "description": desc, "program": program, "method": "grid",
            "metric": {"name": "val/ppl", "goal": "minimize"}, "parameters": params, "command": command}


def _yaml_value(v):
    return v if isinstance(v, (bool, int, float, str)) or v is None else _fmt(v)


def _fmt_flag(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_wandb_sweep(path, spec: dict) -> None:
    import yaml

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=False))
