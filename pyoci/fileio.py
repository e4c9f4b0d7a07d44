"""Whole-file reads with os.open/os.read.

On the hot paths (cgroup files, /proc, the seccomp cache) open() costs more than the read
itself: io's buffer objects, a text wrapper and an isatty ioctl per file.
"""

from __future__ import annotations

import os


def read_all(path: str, flags: int = 0) -> bytes:
    """The file's bytes, read to its end (``flags`` added to O_RDONLY|O_CLOEXEC)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)
