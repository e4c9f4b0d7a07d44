"""Container id checks, kept apart from config loading so that state/kill stay cheap to import."""

import re

from pyoci.errors import InvalidID

# The same characters runc's validateID allows; ids name directories under the state root.
_ID_RE = re.compile(r"[A-Za-z0-9_+.-]+")


def check_container_id(cid: str) -> None:
    """Raise InvalidID unless cid is safe to use as a single path component."""
    if not _ID_RE.fullmatch(cid) or cid in (".", ".."):
        raise InvalidID(cid)
