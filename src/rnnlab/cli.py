"""Shared plumbing of the thin CLIs in experiments/: flag parsing with ml_collections' config
flags (``--config=configs/x.py --config.model.cell=gru``) and one-line errors.

Every user error (RnnlabError, a bad flag or override, a config file that fails to load) is printed
as one line ``error: ...`` on stderr with exit status 2: never a traceback.
"""
from __future__ import annotations

import os
import re
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


def _last_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1] if lines else type(e).__name__


def _override_error(e: BaseException, argv) -> str:
    """One line for a failed --config.a.b=value override: the field and what is allowed."""
    text = str(e.args[0] if e.args else e).replace("\\n", "\n")
    parts = [p.strip(" '\"") for p in text.splitlines() if p.strip()]
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", parts[0]) if parts else []
    key = names[0] if names else "?"
    hint = next((p for p in parts[1:] if p.lower().startswith("did you mean")), "")
    arg = next((a.split("=")[0] for a in argv if a.startswith("--config.") and
                key in a.split("=")[0].split(".")), f"--config...{key}")
    return (f"{arg[2:]} is not a config field" + (f" ({hint.rstrip('?')}?)" if hint else "") +
            "; see the fields in src/rnnlab/config.py or the config's printed config.json")


_TYPES = (("invalid literal for int()", "an integer"), ("could not convert string to float", "a number"),
          ("Non-boolean argument", "true or false"))


def _type_error(line: str) -> str:
    """'flag --config.a.b=v: invalid literal for int() ...' -> '--config.a.b='v' has the wrong type; a.b takes an integer'."""
    m = re.match(r"flag (--config\.([\w.]+))=(.*?): (.*)$", line)
    if not m:
        return line
    flag, field, value, reason = m.groups()
    kind = next((t for k, t in _TYPES if k in reason), None)
    if kind is None:
        return f"{flag}={value!r} is not valid for {field}: {reason}"
    return f"{flag}={value!r} has the wrong type; {field} takes {kind}"


def parse_flags(argv=None):
    """Parse absl flags; turn any parsing error (unknown field, wrong type, missing or broken config
    file) into one line and exit 2."""
    argv = list(sys.argv if argv is None else argv)
    try:
        rest = flags.FLAGS(argv)
        if "config" in flags.FLAGS and hasattr(flags.FLAGS.config, "keys"):  # a config_flags flag, not a path
            list(flags.FLAGS.config.keys())  # config files load lazily: load now, inside this error handling
        return rest
    except flags.Error as e:
        cause = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, (KeyError, AttributeError)):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, (KeyError, AttributeError)):
            die(_override_error(cause, argv))
        die(_type_error(_first_line(e)))
    except (KeyError, AttributeError) as e:
        die(_override_error(e, argv))
    except OSError as e:
        cfg_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "?")
        reason = (e.__cause__.strerror if isinstance(e.__cause__, OSError) else None) or _last_line(e)
        die(f"cannot load config file {cfg_arg!r}: {reason}; pass --config=configs/<name>.py (see configs/)")
    except Exception as e:  # a config file that raises while loading
        die(f"could not load the config: {type(e).__name__}: {_first_line(e)}")


def main_wrapper(fn):
    """Run ``fn()``; RnnlabError and KeyboardInterrupt become one line and a non-zero exit."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return fn()
    except RnnlabError as e:
        die(str(e))
    except KeyboardInterrupt:
        die("interrupted; re-run the same command to resume from the last checkpoint", 130)
    except OSError as e:  # a file or folder the command could not read or write (full disk, permissions)
        from .faults import io_error_message

        die(io_error_message(e, "file system error"))
