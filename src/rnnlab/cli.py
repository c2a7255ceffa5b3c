"""Shared plumbing of the thin CLIs in experiments/: flag parsing with ml_collections' config
flags (``--config=configs/x.py --config.model.cell=gru``) and one-line errors.

Every user error (RnnlabError, a bad flag or override, a config file that fails to load) is printed
as one line ``error: ...`` on stderr with exit status 2: never a traceback.
"""
from __future__ import annotations

import os
import sys

from absl import flags

from . import RnnlabError


def die(msg: str, code: int = 2):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def parse_flags(argv=None):
    """Parse absl flags; turn any parsing error (unknown field, wrong type, missing file) into one line."""
    argv = list(sys.argv if argv is None else argv)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        msg = _first_line(e)
        # absl words override errors around the flag's name; say what is allowed
        if "Could not find" in msg or "does not exist" in msg or "KeyError" in msg:
            msg += " (no such config field; list the fields with --helpfull or read src/rnnlab/config.py)"
        die(msg)
    except (FileNotFoundError, OSError) as e:
        die(_first_line(e))


def main_wrapper(fn):
    """Run ``fn()``; RnnlabError and KeyboardInterrupt become one line and a non-zero exit."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return fn()
    except RnnlabError as e:
        die(str(e))
    except KeyboardInterrupt:
        die("interrupted; re-run the same command to resume from the last checkpoint", 130)
