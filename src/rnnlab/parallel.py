"""Several devices in one job: the batch axis, or the seed axis of vmapped seeds, sharded over a
``jax.sharding.Mesh`` with ``NamedSharding``; parameters and optimizer state replicated; several
hosts joined by ``jax.distributed``.

Config (``parallel.*``, checked by ``check``):

* ``parallel.data = N``: data parallel. The train step's batch (x, y[, mask]: [B, T(, K)]) and the
  carries ([B, H] per layer) are split along B over N devices (mesh axis ``data``, B/N streams per
  device); params and optimizer state are replicated. The step is the same program: the loss is the
  mean over all B x T targets, so XLA's SPMD partitioner computes each device's partial sums and
  all-reduces them and the gradients (``psum`` over ``data``); every device then applies the same
  update. Results equal the one-device run up to float32 summation order (the partial sums are
  added per device, then across devices; tested to 1e-5 relative). Dropout and sampling draws do
  not change (``jax_threefry_partitionable``: a random array's values do not depend on how it is
  sharded). B must be a multiple of N.
* ``parallel.seeds = N``: for seeds trained as one vmapped program (``multiseed``, ``--vmap_seeds``),
  the leading seed axis S of the state, the keys and the metrics is split over N devices (mesh axis
  ``seeds``, S/N seeds per device; the batch is replicated); nothing crosses devices. S must be a
  multiple of N. Both at once use a 2-D mesh (seeds x data) of N_seeds x N_data devices. A single
  run has no seed axis: there ``parallel.seeds`` is not used.
* ``parallel.multihost = True``: ``jax.distributed.initialize()`` before anything touches a device
  (``initialize``); with no arguments it reads the cluster's environment (SLURM: SLURM_JOB_ID,
  SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID, SLURM_STEP_NODELIST; the coordinator is the first node
  of the step). ``jax.devices()`` then lists every process's devices, the mesh spans them, and each
  process feeds the shards of its own devices from the full batch that every process computes the
  same way (``jax.make_array_from_callback``). CPU processes talk through gloo
  (``jax_cpu_collectives_implementation``). Tested with two local CPU processes running the data
  parallel step (tests/test_parallel.py). Limit: ``train.train_and_evaluate`` writes one run
  directory from one process, so it refuses more than one process (``check_processes``); the
  step, the mesh and the placement here are what a multi-process loop builds on.

Usage (train.py and multiseed.py call these; with the defaults they return ``jax.jit(fn,
donate_argnums=0)`` itself, so one-device runs are unchanged)::

    step = parallel.jit_step(make_train_step(model, tx, cfg), cfg)   # fn(state, batch, key)
    step = parallel.jit_seed_step(jax.vmap(step_fn, in_axes=(0, None, 0)), cfg, num_seeds=S)
"""
from __future__ import annotations

import math
import os
from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from . import RnnlabError

DATA, SEEDS = "data", "seeds"  # mesh axis names


# ----------------------------------------------------------------------------- config
def check(cfg) -> None:
    """Ranges of the ``parallel`` fields (called by ``config.validate``; no device is touched):
    data and seeds are integers >= 1, multihost a bool, train.batch_size a multiple of data."""
    p = cfg.get("parallel") if hasattr(cfg, "get") else None
    if p is None:
        return
    for f in ("data", "seeds"):
        v = p[f]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise RnnlabError(f"parallel.{f}={v!r} is not valid; it must be an integer >= 1 (devices)")
    if not isinstance(p.multihost, bool):
        raise RnnlabError(f"parallel.multihost={p.multihost!r} is not valid; it must be True or False")
    B = cfg.train.batch_size
    if B % p.data:
        lo, hi = (B // p.data) * p.data, -(-B // p.data) * p.data
        near = f"{lo} or {hi}" if lo else f"{hi}"
        raise RnnlabError(f"train.batch_size={B} does not divide over parallel.data={p.data} devices; "
                          f"use a multiple of {p.data} (e.g. {near}) or another parallel.data")


def _sizes(cfg) -> tuple[int, int, bool]:
    p = cfg.get("parallel")
    if p is None:
        return 1, 1, False
    return int(p.data), int(p.seeds), bool(p.multihost)


# ----------------------------------------------------------------------------- several hosts
def initialize(cfg) -> None:
    """``jax.distributed.initialize()`` once per process when ``parallel.multihost`` is set (before
    any computation: it must run before the backend starts). With no arguments it reads SLURM's
    environment (or another cluster's that jax knows: Open MPI, Kubernetes, Cloud TPU); the
    coordinator address, process count and id can also come from JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID."""
    if not _sizes(cfg)[2] or jax.distributed.is_initialized():
        return
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:  # CPU processes need gloo for collectives
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        kwargs = dict(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                      num_processes=int(os.environ.get("JAX_NUM_PROCESSES", "1")),
                      process_id=int(os.environ.get("JAX_PROCESS_ID", "0")))
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise RnnlabError(f"parallel.multihost=True: jax.distributed.initialize() failed: "
                          f"{lines[0] if lines else type(e).__name__} (run it under srun, or set "
                          f"JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID)") from None


def check_processes(what: str = "train.train_and_evaluate") -> None:
    """One line when this is one of several jax processes: ``what`` writes one run directory from
    one process (the limit in the module docstring)."""
    if jax.process_count() > 1:
        raise RnnlabError(f"{what} runs in one process; this is process {jax.process_index()} of "
                          f"{jax.process_count()} (parallel.multihost): a multi-process run directory is "
                          f"not supported yet; use parallel.data over the devices of one host")


# ----------------------------------------------------------------------------- mesh and placement
def make_mesh(data: int = 1, seeds: int = 1) -> Mesh:
    """A mesh of the first seeds x data devices (all processes' devices with jax.distributed), axes
    ('seeds', 'data') or ('data',) when seeds is 1."""
    devices = jax.devices()
    need = data * seeds
    if need > len(devices):
        raise RnnlabError(f"parallel.data={data} x parallel.seeds={seeds} needs {need} devices; "
                          f"{len(devices)} {'is' if len(devices) == 1 else 'are'} available "
                          f"({devices[0].platform}); lower them or run where there are more devices")
    grid = np.array(devices[:need], dtype=object)
    if seeds == 1:
        return Mesh(grid.reshape(data), (DATA,))
    return Mesh(grid.reshape(seeds, data), (SEEDS, DATA))


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def put(x, sharding: NamedSharding):
    """``x`` (a numpy or jax array, or a typed key array) with ``sharding``; nothing moves when it
    has it already. With several processes every process passes the same full value and keeps the
    shards of its own devices."""
    if isinstance(x, jax.Array) and x.sharding == sharding:
        return x
    if _is_key(x):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(put(jax.random.key_data(x), sharding), impl=impl)
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    value = np.asarray(x)
    return jax.make_array_from_callback(value.shape, sharding, lambda idx: value[idx])


class Placement:
    """Where the step's arguments live on ``mesh``: leaves of the state (and keys, metrics) with a
    seed axis (``seed_axis``: the leading one, vmapped seeds) split along 'seeds'; the batch axis B of
    the batch (axis 0) and of the carries (after the seed axis) split along 'data'; the rest
    replicated."""

    def __init__(self, mesh: Mesh, batch_size: int, seed_axis: bool):
        self.mesh, self.B, self.seed_axis = mesh, batch_size, seed_axis
        self.data = mesh.shape.get(DATA, 1) > 1
        self.seeds = mesh.shape.get(SEEDS, 1) > 1

    def _sharding(self, *spec) -> NamedSharding:
        return NamedSharding(self.mesh, P(*spec))

    def _lead(self) -> tuple:
        return ((SEEDS if self.seeds else None),) if self.seed_axis else ()

    def _batch_axis(self, x, dim: int) -> str | None:
        shape = getattr(x, "shape", ())
        return DATA if self.data and len(shape) > dim and shape[dim] == self.B else None

    def state_shardings(self, state):
        """A tree like ``state`` (a TrainState) of NamedShardings."""
        lead = self._lead()
        whole = lambda x: self._sharding(*lead)  # noqa: E731
        carry = lambda x: self._sharding(*lead, self._batch_axis(x, len(lead)))  # noqa: E731
        tm = jax.tree_util.tree_map
        return state.replace(step=tm(whole, state.step), params=tm(whole, state.params),
                             opt_state=tm(whole, state.opt_state), carries=tm(carry, state.carries))

    def batch_shardings(self, batch):
        return jax.tree_util.tree_map(lambda x: self._sharding(self._batch_axis(x, 0)), batch)

    def key_sharding(self) -> NamedSharding:
        return self._sharding(*self._lead())

    def place(self, tree, shardings):
        return jax.tree_util.tree_map(put, tree, shardings)


def _jit_placed(fn: Callable, placement: Placement, num_seeds: int = 0) -> Callable:
    """jit(fn) for fn(state, batch, key) -> (state, metrics) whose arguments are placed as
    ``placement`` says before each call (a no-op for those already there: the state the step
    returned) and whose outputs stay there (out_shardings; metrics along the seed axis or
    replicated). The state is donated, as in the one-device step. With a seed axis split over
    devices, its length S (``num_seeds``, else the state's) must divide by their number."""
    jitted: dict = {}
    n = placement.mesh.shape.get(SEEDS, 1)

    def check_seeds(S: int) -> None:
        if S % n:
            raise RnnlabError(f"parallel.seeds={n} does not divide the {S} seeds trained together; train a multiple "
                              f"of {n} seeds (train.seed values) or set parallel.seeds={math.gcd(S, n)}")

    if placement.seed_axis and num_seeds:
        check_seeds(num_seeds)

    def step(state, batch, key):
        if placement.seed_axis:
            check_seeds(int(state.step.shape[0]))
        shardings = placement.state_shardings(state)
        if "fn" not in jitted:
            jitted["fn"] = jax.jit(fn, donate_argnums=0, out_shardings=(shardings, placement.key_sharding()))
        state = placement.place(state, shardings)
        batch = placement.place(batch, placement.batch_shardings(batch))
        return jitted["fn"](state, batch, put(key, placement.key_sharding()))

    step.placement = placement
    return step


def jit_step(fn: Callable, cfg) -> Callable:
    """The one-run train step fn(state, batch, key) jitted, data parallel over ``parallel.data``
    devices (the module docstring); ``jax.jit(fn, donate_argnums=0)`` when it is 1."""
    data, _, _ = _sizes(cfg)
    if data == 1:
        return jax.jit(fn, donate_argnums=0)
    check(cfg)
    return _jit_placed(fn, Placement(make_mesh(data), int(cfg.train.batch_size), seed_axis=False))


def jit_seed_step(fn: Callable, cfg, num_seeds: int = 0) -> Callable:
    """The vmapped step fn(state [S, ...], batch, keys [S]) jitted, its seed axis split over
    ``parallel.seeds`` devices and its batch over ``parallel.data`` (the module docstring);
    ``jax.jit(fn, donate_argnums=0)`` when both are 1. S (``num_seeds`` when given, checked now;
    else checked at each call) must be a multiple of ``parallel.seeds``."""
    data, seeds, _ = _sizes(cfg)
    if data == 1 and seeds == 1:
        return jax.jit(fn, donate_argnums=0)
    check(cfg)
    return _jit_placed(fn, Placement(make_mesh(data, seeds), int(cfg.train.batch_size), seed_axis=True), num_seeds)


def start(cfg, what: str = "train.train_and_evaluate") -> None:
    """At the start of a run, before its run directory is written: ``initialize``
    (parallel.multihost), ``check_processes``, and enough devices for ``parallel.data``."""
    initialize(cfg)
    data, _, multihost = _sizes(cfg)
    if multihost or data > 1:
        check_processes(what)
    if data > 1:
        make_mesh(data)
