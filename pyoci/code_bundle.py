"""pyoci's compiled modules in one file, for the start-up of every command (issue 7).

A `run` imports some forty of pyoci's modules, and the import system's per-module work
(find the file, stat it, open and read its .pyc, check its header) costs about as much as
unmarshalling and running the modules themselves. :func:`build` compiles every module of
the package into one file, ``pyoci/__pycache__/code-bundle.<cache tag>``; :func:`install`
puts a finder first on ``sys.meta_path`` that serves a module from that file (one stat of
its source, one open and pread of the bundle) whenever the source is still the one
compiled: same size, same mtime in nanoseconds. No descriptor is kept open between
imports: one would take the place of a --preserve-fds descriptor the caller did not pass,
and be handed to the container. Anything else (a module not in the file, an edited or missing
source, a file from another interpreter, any read or unmarshal error) is left to the
import system as usual, so the file can only ever make an import faster, never different.

The file is written by ``python -m pyoci.code_bundle`` (``.ci/setup`` and ``.ci/test`` run
it); without it pyoci works the same, only slower to start.

Format: ``MAGIC``, the interpreter's bytecode magic number, the length of the index, the
index (marshal: module name -> (path relative to the package's parent, is a package,
mtime_ns, size, offset, length)), then each module's code object (marshal), at
``offset`` from the end of the index.
"""

from __future__ import annotations

import _frozen_importlib_external as _bootstrap_external  # importlib.util imports contextlib
import marshal
import os
import sys

MAGIC = b"pyoci-code-bundle-1\n"
_HEADER = len(MAGIC) + 4 + 4


def bundle_path(package_dir: str) -> str:
    return os.path.join(package_dir, "__pycache__",
                        f"code-bundle.{sys.implementation.cache_tag}")


class BundledLoader(_bootstrap_external.SourceFileLoader):
    """A source file loader whose code comes from the bundle (all else, such as
    get_source for tracebacks, as for any source file)."""

    def __init__(self, fullname: str, path: str, bundle: str, offset: int,
                 length: int) -> None:
        super().__init__(fullname, path)
        self._bundle, self._offset, self._length = bundle, offset, length

    def get_code(self, fullname: str):  # noqa: ANN201 - a code object
        try:
            data = _read_at(self._bundle, self._offset, self._length)
            if len(data) == self._length:
                return marshal.loads(data)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        return super().get_code(fullname)


class BundleFinder:
    """The meta path finder serving fresh modules from an open bundle file."""

    def __init__(self, bundle: str, base: str, index: dict, data_start: int) -> None:
        self.bundle, self.base, self.index, self.data_start = bundle, base, index, data_start

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        entry = self.index.get(fullname)
        if entry is None:
            return None
        relpath, is_package, mtime_ns, size, offset, length = entry
        source = os.path.join(self.base, relpath)
        try:
            st = os.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None  # edited since the bundle was built: the import system's
        loader = BundledLoader(fullname, source, self.bundle, self.data_start + offset,
                               length)
        locations = [os.path.dirname(source)] if is_package else None
        return _bootstrap_external.spec_from_file_location(
            fullname, source, loader=loader, submodule_search_locations=locations)


def _read_at(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def install(package_dir: str) -> BundleFinder | None:
    """Serve pyoci's modules from the bundle of ``package_dir``; None if there is none
    that this interpreter can use (or one is installed already)."""
    if any(isinstance(f, BundleFinder) for f in sys.meta_path):
        return None
    path = bundle_path(package_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = os.pread(fd, _HEADER, 0)
        if (len(head) != _HEADER or head[:len(MAGIC)] != MAGIC
                or head[len(MAGIC):len(MAGIC) + 4] != _bootstrap_external.MAGIC_NUMBER):
            raise ValueError("not a bundle of this interpreter")
        size = int.from_bytes(head[-4:], "little")
        raw = os.pread(fd, size, _HEADER)
        index = marshal.loads(raw) if len(raw) == size else None
        if not isinstance(index, dict):
            raise ValueError("truncated index")
    except (OSError, ValueError, EOFError, TypeError):
        return None
    finally:
        os.close(fd)
    finder = BundleFinder(path, os.path.dirname(package_dir), index, _HEADER + size)
    sys.meta_path.insert(0, finder)
    return finder


def build(package_dir: str) -> str:
    """Compile every module of the package at ``package_dir`` into its bundle, written
    whole (a new file renamed into place); returns its path."""
    base = os.path.dirname(package_dir)
    package = os.path.basename(package_dir)
    index: dict[str, tuple] = {}
    blobs: list[bytes] = []
    offset = 0
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                             and os.path.exists(os.path.join(dirpath, d, "__init__.py")))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            source = os.path.join(dirpath, name)
            relpath = os.path.relpath(source, base)
            parts = relpath[:-3].split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            with open(source, "rb") as f:
                st = os.fstat(f.fileno())
                code = compile(f.read(), source, "exec", dont_inherit=True)
            blob = marshal.dumps(code)
            index[".".join(parts)] = (relpath, is_package, st.st_mtime_ns, st.st_size,
                                      offset, len(blob))
            blobs.append(blob)
            offset += len(blob)
    if package not in index:
        raise ValueError(f"{package_dir} is not a package (no __init__.py)")
    raw = marshal.dumps(index)
    path = bundle_path(package_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + _bootstrap_external.MAGIC_NUMBER + len(raw).to_bytes(4, "little"))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    print(build(os.path.dirname(os.path.abspath(__file__))))
