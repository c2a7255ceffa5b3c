"""The usage of a CLI that does nothing unless told what to do (benchmark, kill_resume, ab_benchmark).

(absl prints flag help only through app.run's --help; these CLIs parse with rnnlab.cli.parse_flags,
so the text is put together here from the CLI's docstring and absl's main-module flag help.)
"""
import sys

from absl import flags


def print_usage_if_bare(doc: str) -> bool:
    """With no flags on the command line: print ``doc`` (command, rule, example) and every flag of the
    main module with its description and default; -> True (the caller exits 0). Else -> False."""
    if len(sys.argv) > 1:
        return False
    lines = [ln for ln in flags.FLAGS.main_module_help().splitlines() if ln.startswith(" ")]
    print(doc.strip() + "\n\nflags:\n" + "\n".join(lines))
    return True
