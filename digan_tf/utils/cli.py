"""How `bin/` scripts report errors: in flag terms.

Library code names what went wrong by its own argument and field names,
written in backticks (`` `data_dir` ``); a script's flags share those names,
so `exit_with_error` turns every backticked name that is one of the
script's flags into `--name` (through `aliases` where an argument and its
flag are named differently) and stops with the message.
"""

import re
import sys

from absl import flags

_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def in_flag_terms(message, flag_names=None, aliases=None):
    """`message` with each backticked argument that is a defined flag (of
    `flag_names`, default every absl flag) written as `--name`; `aliases`
    maps argument names to the flags that feed them."""
    if flag_names is None:
        flag_names = set(flags.FLAGS)
    aliases = aliases or {}

    def flag_term(match):
        name = aliases.get(match.group(1), match.group(1))
        return f"--{name}" if name in flag_names else match.group(0)

    return _NAME.sub(flag_term, message)


def exit_with_error(program, error, aliases=None, code=1):
    """Prints `program: <error in flag terms>` to stderr and exits."""
    message = in_flag_terms(str(error), aliases=aliases)
    print(f"{program}: {message}", file=sys.stderr)
    sys.exit(code)
