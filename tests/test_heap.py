"""heap.py: every CLI re-executes itself once with glibc's mmap and trim thresholds raised (XLA's CPU
buffers reused across steps), in place (same pid, same arguments, same exit status), and not at all
with RNNLAB_HEAP=default or when the variables are already set."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnnlab import heap

SCRIPT = ("import os, sys; from rnnlab.cli import main_wrapper; "
          "sys.exit(main_wrapper(lambda: print(os.environ.get('MALLOC_MMAP_THRESHOLD_'), os.getpid(), sys.argv[1:]) or 3))")


def run(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in heap.SETTINGS and k != "RNNLAB_HEAP"}
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, "a b", "--x=1"], env={**env, **env_extra},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    return p, out.split(), err


@pytest.mark.skipif(not heap.needs_reexec({}), reason="not Linux with glibc")
def test_cli_reexecutes_once_in_place_with_the_heap_settings():
    p, out, err = run({})
    threshold, pid = out[0], int(out[1])
    assert threshold == heap.SETTINGS["MALLOC_MMAP_THRESHOLD_"] == str(4 << 30)
    assert pid == p.pid and p.returncode == 3  # the same process, its exit status kept
    assert "'a b', '--x=1'" in " ".join(out[2:]) and "Traceback" not in err


def test_opt_out_and_settings_already_there():
    p, out, _ = run({"RNNLAB_HEAP": "default"})
    assert out[0] == "None" and p.returncode == 3
    p, out, _ = run({"MALLOC_MMAP_THRESHOLD_": "65536"})
    assert out[0] == "65536"  # a user's own setting wins
    assert not heap.needs_reexec({"RNNLAB_HEAP": "default"})
    assert not heap.needs_reexec({"MALLOC_TRIM_THRESHOLD_": "1"})
