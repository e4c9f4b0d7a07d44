"""Signal-name parsing for `pyoci kill`, accepting the spellings runc accepts.

Stdlib only: `kill` is a hot path and must not pull in create-time modules.
"""

from __future__ import annotations

import signal

from pyoci.errors import PyociError


def parse_signal(s: str) -> int:
    """Turn "KILL", "SIGKILL", "kill", "9", "SIGRTMIN+3" or "RTMAX-1" into a signal number.

    Raises PyociError(`unknown signal "FOO"`) with runc's wording otherwise.
    """
    text = s.strip()
    if text.isdigit():
        num = int(text)
        if num <= signal.SIGRTMAX:
            return num
        raise _unknown(s)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, sign in (("SIGRTMIN", "+"), ("SIGRTMAX", "-")):
        if name.startswith(base + sign):
            offset = name[len(base) + 1 :]
            if not offset.isdigit():
                raise _unknown(s)
            n = int(offset)
            num = signal.SIGRTMIN + n if sign == "+" else signal.SIGRTMAX - n
            if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
                return num
            raise _unknown(s)
    member = signal.Signals.__members__.get(name)
    if member is None:
        raise _unknown(s)
    return int(member)


def _unknown(s: str) -> PyociError:
    """Build the error runc prints (Go's %q quoting) so callers matching on it still work."""
    return PyociError(f"unknown signal {_go_quote(s)}")


def _go_quote(s: str) -> str:
    """Approximate Go's %q: double quotes, backslash escapes."""
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'
