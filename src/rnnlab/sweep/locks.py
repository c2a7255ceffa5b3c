"""One process per member: ``<run dir>/.sweep.lock`` holds ``host pid`` while it trains.

A second sweep on the same study, or W&B agents sharing a file system, skip a member another live
process holds. A lock whose process is gone (same host) is taken over; one from another host must
be removed by hand.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

LOCK_FILE = ".sweep.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(run_dir) -> str | None:
    """Claim a member for this process: None when claimed, else who holds it."""
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


def held_elsewhere(run_dir) -> bool:
    """Another live process holds this member's lock."""
    try:
        host, pid = (Path(run_dir) / LOCK_FILE).read_text().split()
        pid = int(pid)
    except (OSError, ValueError):
        return False
    return host != socket.gethostname() or (pid != os.getpid() and pid > 0 and _alive(pid))


def release(run_dir) -> None:
    path = Path(run_dir) / LOCK_FILE
    try:
        if path.read_text().split()[-1] == str(os.getpid()):
            path.unlink()
    except (OSError, IndexError):
        pass
