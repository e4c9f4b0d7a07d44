"""Container id checks, kept apart from config loading so that state/kill stay cheap to import."""

from pyoci.errors import InvalidID

# The same characters runc's validateID allows ([A-Za-z0-9_+.-]+); ids name directories
# under the state root. A str method, not re: re costs ~4 ms to import on `run`'s path.
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-"


def check_container_id(cid: str) -> None:
    """Raise InvalidID unless cid is safe to use as a single path component."""
    # strip leaves nothing exactly when every character is one of ID_CHARS
    if not cid or cid.strip(ID_CHARS) or cid in (".", ".."):
        raise InvalidID(cid)
