"""Run the planned rows in this process (``run_benchmark``) and describe the machine (``environment``)."""
from __future__ import annotations

import datetime
import os
import platform

import jax
import optax

from .flax_rows import flax_row
from .plan import CELLS, IMPLS, MODES, SIZES, Options, plan
from .rnnlab_rows import rnnlab_row, ss_available
from .tables import add_ratios, line
from .timing import run_interleaved
from .torch_rows import torch_available, torch_row


def environment() -> dict:
    """Device, library versions, CPU count, git commit and date of this process."""
    import flax

    from ..rundir import git_commit

    d = jax.devices()[0]
    env = {"device": d.device_kind, "platform": d.platform, "jax": jax.__version__, "flax": flax.__version__,
           "optax": optax.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
           "git_commit": git_commit(), "date": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        import jaxlib

        env["jaxlib"] = jaxlib.__version__
    except ImportError:
        pass
    if torch_available():
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["torch_device"] = torch.cuda.get_device_name()
            env["cudnn"] = torch.backends.cudnn.version()
    return env


def row_generator(impl, s, c, mode, kw, opts: Options):
    """The generator of one planned row (``timing.timed``): rnnlab, rnnlab_seeds, flax, torch or torch_loop."""
    size = SIZES[s]
    if impl == "rnnlab":
        return rnnlab_row(s, size, c, mode, opts, **kw)
    if impl == "rnnlab_seeds":
        return rnnlab_row(s, size, c, mode, opts, seeds=opts.seeds, **kw)
    if impl == "flax":
        return flax_row(s, size, c, opts)
    return torch_row(s, size, c, opts, loop=(impl == "torch_loop"), **kw)


def run_benchmark(sizes=("S",), cells=CELLS, impls=IMPLS, modes=MODES, opts: Options | None = None,
                  log=print) -> list[dict]:
    """Run every planned row in this process; a row that cannot run gives a record with ``error``.
    ``log``: called with each row's console line (None: quiet). With ``opts.interleave`` the rows of one
    (size, cell) are compiled together and their timed blocks taken in turn (``timing.run_interleaved``),
    else one row after another. Ratios are added at the end."""
    opts = opts or Options()
    records = []
    have_torch = torch_available()
    rows = plan(sizes, cells, impls, modes, opts)
    groups = [[r for r in rows if (r[1], r[2]) == sc] for sc in dict.fromkeys((r[1], r[2]) for r in rows)]
    if not opts.interleave:
        groups = [[r] for r in rows]
    for group in groups:
        out, gens, where = [], [], []
        for impl, s, c, mode, kw in group:
            base = {"impl": impl, "size": s, "cell": c, "mode": mode}
            if impl.startswith("torch") and not have_torch:
                out.append({**base, "error": "torch is not installed"})
            elif mode == "ss" and impl.startswith("rnnlab") and not ss_available():
                out.append({**base, "error": "train.mode=scheduled_sampling is not implemented in forcing.py"})
            else:
                out.append(None)
                gens.append(row_generator(impl, s, c, mode, kw, opts))
                where.append(len(out) - 1)

        def failed(i, e, group=group):
            impl, s, c, mode, _ = group[where[i]]
            return {"impl": impl, "size": s, "cell": c, "mode": mode,
                    "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}

        for i, rec in zip(where, run_interleaved(gens, failed)):
            out[i] = rec
        records += out
        if log:
            for rec in out:
                log(line(rec))
    add_ratios(records)
    return records
