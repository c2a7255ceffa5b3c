"""Run the planned rows in this process (``run_benchmark``) and describe the machine (``environment``)."""
from __future__ import annotations

import datetime
import os
import platform

import jax
import optax

from .flax_rows import bench_flax
from .plan import CELLS, IMPLS, MODES, SIZES, Options, plan
from .rnnlab_rows import bench_rnnlab, ss_available
from .tables import add_ratios, line
from .torch_rows import bench_torch, torch_available


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


def run_benchmark(sizes=("S",), cells=CELLS, impls=IMPLS, modes=MODES, opts: Options | None = None,
                  log=print) -> list[dict]:
    """Run every planned row in this process; a row that cannot run gives a record with ``error``.
    ``log``: called with each row's console line (None: quiet). Ratios are added at the end."""
    opts = opts or Options()
    records = []
    have_torch = torch_available()
    for impl, s, c, mode, kw in plan(sizes, cells, impls, modes, opts):
        size = SIZES[s]
        base = {"impl": impl, "size": s, "cell": c, "mode": mode}
        if impl.startswith("torch") and not have_torch:
            records.append({**base, "error": "torch is not installed"})
            continue
        if mode == "ss" and impl.startswith("rnnlab") and not ss_available():
            records.append({**base, "error": "train.mode=scheduled_sampling is not implemented in forcing.py"})
            continue
        try:
            if impl == "rnnlab":
                rec = bench_rnnlab(s, size, c, mode, opts, **kw)
            elif impl == "rnnlab_seeds":
                rec = bench_rnnlab(s, size, c, mode, opts, seeds=opts.seeds, **kw)
            elif impl == "flax":
                rec = bench_flax(s, size, c, opts)
            else:
                rec = bench_torch(s, size, c, opts, loop=(impl == "torch_loop"))
        except Exception as e:  # noqa: BLE001 - keep the other rows; the record says what failed
            if isinstance(e, KeyboardInterrupt):
                raise
            rec = {**base, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        records.append(rec)
        if log:
            log(line(rec))
    add_ratios(records)
    return records
