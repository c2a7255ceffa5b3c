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


HELP_FLAGS = ("-h", "-help", "--help", "-?", "--helpshort", "--helpfull")


def print_help(argv) -> None:
    """``--help`` / ``-h``: the command's docstring and its flags with their descriptions;
    ``--helpfull``: every flag, absl's own included."""
    main = sys.modules.get("__main__")
    doc = (getattr(main, "__doc__", None) or "").strip()
    full = any(a == "--helpfull" for a in argv)
    text = flags.FLAGS.get_help() if full else flags.FLAGS.main_module_help()
    if doc:
        print(doc + "\n")
    print("flags:" + text.rstrip())
    if "config" in flags.FLAGS:
        print("\n  --config.<section>.<field>=VALUE: override any field of the config (every field, with a "
              "comment, is in src/rnnlab/config.py), e.g. --config.model.cell=gru")


def _config_arg(argv) -> str | None:
    """The value of --config (``--config=PATH`` or ``--config PATH``), or None."""
    for i, a in enumerate(argv):
        if a.startswith("--config="):
            return a.split("=", 1)[1]
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _where(tb, path: str) -> str:
    """' (line N)' of the innermost frame of ``tb`` in the file ``path``, or ''."""
    import traceback

    lines = [f.lineno for f in traceback.extract_tb(tb) if os.path.abspath(f.filename) == os.path.abspath(path)]
    return f" (line {lines[-1]})" if lines else ""


def check_config_file(arg: str) -> str | None:
    """Load a ``--config`` file the way ml_collections does and say in one line what is wrong with it
    (None when it gives a ConfigDict): it fails to import, calls sys.exit, has no ``get_config``,
    ``get_config()`` raises, or returns something that is not an ``ml_collections.ConfigDict``."""
    import importlib.util

    import ml_collections

    path, _, extra = arg.partition(":")
    if not os.path.isfile(path):
        return None  # the OSError branch of parse_flags names it
    fix = "a config file defines get_config() returning an ml_collections.ConfigDict (see configs/)"
    stage = "while loading"
    try:
        spec = importlib.util.spec_from_file_location("_rnnlab_config_check", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "get_config", None)):
            return f"config file {path!r} has no get_config() function; {fix}"
        stage = "in get_config()"
        cfg = module.get_config(*([extra] if extra else []))
    except SystemExit as e:
        return f"config file {path!r} called sys.exit({e.code!r}) {stage}; nothing was run; {fix}"
    except BaseException as e:  # noqa: BLE001  (anything the user's file raises: one line with its cause)
        if isinstance(e, KeyboardInterrupt):
            raise
        return f"config file {path!r} raised {type(e).__name__}: {_first_line(e)} {stage}{_where(e.__traceback__, path)}"
    if not isinstance(cfg, ml_collections.ConfigDict):
        return f"get_config() in {path!r} returned {type(cfg).__name__} {str(cfg)[:60]!r}, not a ConfigDict; {fix}"
    return None


def parse_flags(argv=None):
    """Parse absl flags; turn any parsing error (unknown field, wrong type, missing or broken config
    file) into one line and exit 2. ``--help``, ``-h``, ``--helpfull``: print the flags, exit 0."""
    argv = list(sys.argv if argv is None else argv)
    if any(a in HELP_FLAGS for a in argv[1:]):
        print_help(argv)
        sys.exit(0)
    cfg_arg = _config_arg(argv) if "config" in flags.FLAGS else None

    def bad_config_file():
        problem = check_config_file(cfg_arg) if cfg_arg else None
        if problem:
            die(problem)

    rest = None
    try:
        rest = flags.FLAGS(argv)
        if "config" in flags.FLAGS and hasattr(flags.FLAGS.config, "keys"):  # a config_flags flag, not a path
            list(flags.FLAGS.config.keys())  # config files load lazily: load now, inside this error handling
    except SystemExit:  # the config file called sys.exit
        bad_config_file()
        die(f"loading --config={cfg_arg!r} exited; a config file must not call sys.exit")
    except flags.Error as e:
        bad_config_file()
        cause = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, (KeyError, AttributeError)):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, (KeyError, AttributeError)):
            die(_override_error(cause, argv))
        die(_type_error(_first_line(e)))
    except (KeyError, AttributeError) as e:
        bad_config_file()
        die(_override_error(e, argv))
    except OSError as e:
        reason = (e.__cause__.strerror if isinstance(e.__cause__, OSError) else None) or _last_line(e)
        die(f"cannot load config file {cfg_arg or '?'!r}: {reason}; pass --config=configs/<name>.py (see configs/)")
    except Exception as e:  # a config file that raises while loading
        bad_config_file()
        die(f"could not load the config: {type(e).__name__}: {_first_line(e)}")
    if cfg_arg and type(flags.FLAGS.config).__name__ != "ConfigDict":  # a dict, a number, None: not a config
        bad_config_file()
    return rest


def main_wrapper(fn):
    """Run ``fn()``; RnnlabError, KeyboardInterrupt and a SIGTERM (``faults.Preempted``: exit 143)
    become one line and a non-zero exit. First the process re-executes itself once with the heap
    settings of ``heap.py`` (XLA's CPU buffers reused; ``RNNLAB_HEAP=default`` keeps glibc's own)."""
    from .heap import reexec_with_heap_settings

    reexec_with_heap_settings()
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
    except SystemExit:
        raise
    except BaseException as e:
        from .faults import PREEMPT_EXIT, Preempted

        if isinstance(e, Preempted):
            die(str(e), PREEMPT_EXIT)
        raise
