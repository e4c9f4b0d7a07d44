"""The library's "pyoci" logger, with `logging` imported only for a record to emit.

Most commands log nothing, and importing logging (with traceback, string, ...) costs every
call several milliseconds. The CLI sets its handler up whenever logging gets imported
(pyoci.cli_common._LogOnImport), so a record emitted through here still finds it. A debug
record is dropped unseen while logging is not loaded: only --debug lets one through, and
--debug loads logging at start-up. That also keeps the container's init, past pivot_root
where no module can be imported any more, from ever importing logging for a debug record.
"""

from __future__ import annotations

import sys

NAME = "pyoci"


def get():  # -> logging.Logger
    import logging

    return logging.getLogger(NAME)


def warning(msg: str, *args: object) -> None:
    get().warning(msg, *args)


def debug(msg: str, *args: object) -> None:
    if "logging" in sys.modules:
        get().debug(msg, *args)
