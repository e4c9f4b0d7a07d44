"""Logging set up the way runc's logrus output looks, because callers parse it.

containerd and podman pass `--log FILE --log-format json` and, on failure, read that
file back (podman parses the whole file as one JSON object), so without --debug the
file gets nothing but warnings from the library and the single error record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

LOGGER_NAME = "pyoci"

_handler: logging.Handler | None = None
_to_file = False

# logrus leaves a value unquoted only when every character is one of these.
_BARE = re.compile(r"[A-Za-z0-9\-._/@^+]+")


def _rfc3339(created: float) -> str:
    """RFC 3339 UTC timestamp, as logrus prints by default."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _level(record: logging.LogRecord) -> str:
    """logrus level names: warning, error, debug, info, fatal."""
    name = record.levelname.lower()
    return "fatal" if name == "critical" else name


def _message(record: logging.LogRecord) -> str:
    """The message, with any traceback appended so nothing is lost in the one record."""
    msg = record.getMessage()
    if record.exc_info:
        msg += "\n" + logging.Formatter().formatException(record.exc_info)
    return msg


def _quote(value: str) -> str:
    """Quote like logrus' text formatter (Go %q) when the value needs it."""
    if _BARE.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time="..." level=error msg="..."`, one line per record, like logrus."""

    def format(self, record: logging.LogRecord) -> str:
        return (
            f"time={_quote(_rfc3339(record.created))} level={_level(record)} "
            f"msg={_quote(_message(record))}"
        )


class JSONFormatter(logging.Formatter):
    """`{"level":...,"msg":...,"time":...}` on one line, keys sorted like logrus."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": _level(record), "msg": _message(record),
                 "time": _rfc3339(record.created)}
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def setup(log_path: str | None, log_format: str = "text", debug: bool = False) -> None:
    """Attach one handler to the "pyoci" logger: the --log file (created now) or stderr.

    The file is opened at startup so it exists even when nothing fails, as with runc.
    """
    global _handler, _to_file
    shutdown()
    handler: logging.Handler
    if log_path:
        handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False
    _handler, _to_file = handler, bool(log_path)


def error(msg: str) -> None:
    """Append the one error record to the --log file; stderr gets the plain line elsewhere."""
    if _handler is not None and _to_file:
        logging.getLogger(LOGGER_NAME).error(msg)


def shutdown() -> None:
    """Detach and close our handler so repeated in-process runs (tests) don't stack them."""
    global _handler, _to_file
    if _handler is not None:
        logging.getLogger(LOGGER_NAME).removeHandler(_handler)
        _handler.close()
    _handler, _to_file = None, False

