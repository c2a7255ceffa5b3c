"""The C heap of the command-line processes: XLA's large CPU buffers reused, not mapped afresh.

XLA's CPU runtime takes every execution's temporaries (tens of MB for one training step of the
word-level LM at size S: logits, their gradient, the embedding gradient) from ``malloc``. glibc
serves a block above its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh ``mmap`` and
returns it to the kernel on ``free``, so each step page-faults its buffers in again: ~20% of a CPU
step at size S (docs/perf_notes.md). ``mallopt`` cannot raise the threshold past 32 MiB; the
environment can, but glibc reads it only when a process starts. So ``reexec_with_heap_settings``,
called first by every CLI (``cli.main_wrapper``), re-executes the process once with
``MALLOC_MMAP_THRESHOLD_`` (4 GiB: blocks come from the heap and are reused) and
``MALLOC_TRIM_THRESHOLD_`` (glibc's adaptive threshold is off once one is set, and a small trim
threshold alone makes it worse). Hand-written: no library sets allocator options for a Python process.

It does nothing when ``RNNLAB_HEAP=default``, when either variable is already set (a user's own
choice, or the re-executed process), off Linux / glibc, or when the original command line is unknown.
"""
from __future__ import annotations

import os
import platform
import sys

SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(4 << 30), "MALLOC_TRIM_THRESHOLD_": str(16 << 30)}


def needs_reexec(environ=None) -> bool:
    """Would ``reexec_with_heap_settings`` re-execute this process?"""
    env = os.environ if environ is None else environ
    if env.get("RNNLAB_HEAP", "tuned") == "default" or any(k in env for k in SETTINGS):
        return False
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    return bool(getattr(sys, "orig_argv", None))


def reexec_with_heap_settings() -> None:
    """Replace this process by the same command with ``SETTINGS`` in its environment (see the module
    docstring); returns only where nothing is to be done. Call it before anything is printed."""
    if not needs_reexec():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **SETTINGS})
