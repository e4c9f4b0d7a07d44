"""Whole-file reads and writes with os.open/os.read/os.write.

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


def write_new(path: str, data: bytes, flags: int = os.O_TRUNC, mode: int = 0o666) -> None:
    """Create ``path`` (``flags`` added to O_WRONLY|O_CREAT|O_CLOEXEC) holding ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
