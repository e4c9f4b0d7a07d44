"""JSON without the json package: CPython's own C accelerator, called directly (issue 7).

``import json`` costs ~2 ms on every `create`, `run` and `exec` (json.decoder imports re,
and re imports enum, functools and collections). Under both functions json's decoder and
encoder use the same C code, ``_json.make_scanner`` and ``_json.make_encoder``: this
module calls them itself, with the settings of a plain ``json.loads(s)`` and
``json.dumps(obj)``, so results are the same, byte for byte. Anything the fast path does
not take (a document it cannot parse, an object it cannot encode, bytes that are not
plain UTF-8) goes to the json package, which then raises its own exception with its own
message (a bad config.json is reported in json's words).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # typing itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"  # JSON's whitespace (json.decoder.WHITESPACE)


class _Context:
    """What ``_json.make_scanner`` reads from a JSONDecoder: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # json's _CONSTANTS: float("NaN"), float("Infinity"), ...
    memo: dict = {}


_scan = _json.make_scanner(_Context())


def _default(o: object) -> object:
    raise TypeError  # json.dumps's own message comes from the fallback


def loads(s: str | bytes | bytearray) -> Any:
    """``json.loads(s)``: the same object, or json's own exception."""
    try:
        if not isinstance(s, str):
            if s[:3] == b"\xef\xbb\xbf" or 0 in s[:4]:  # a BOM, UTF-16/32: json's job
                raise ValueError
            s = s.decode("utf-8", "surrogatepass")
        idx = len(s) - len(s.lstrip(_WS))
        obj, end = _scan(s, idx)
        if s[end:].strip(_WS):
            raise ValueError
        return obj
    except Exception:
        pass
    import json
    return json.loads(s)


def dumps(obj: object) -> str:
    """``json.dumps(obj)``: the same text, or json's own exception."""
    try:
        if isinstance(obj, str):
            return _json.encode_basestring_ascii(obj)
        # json.dumps(obj)'s encoder: a fresh dict of markers (check_circular), no indent,
        # separators ": " and ", ", no sort_keys, no skipkeys, allow_nan
        encode = _json.make_encoder({}, _default, _json.encode_basestring_ascii, None,
                                    ": ", ", ", False, False, True)
        return "".join(encode(obj, 0))
    except Exception:
        pass
    import json
    return json.dumps(obj)


def __getattr__(name: str) -> object:
    """``jsonio.JSONDecodeError``: json's own class, imported when an except clause asks
    for it (which it does only once an exception is on its way, json already imported)."""
    if name == "JSONDecodeError":
        from json import JSONDecodeError

        return JSONDecodeError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
