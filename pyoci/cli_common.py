"""What both command-line front ends share, without click: the global options, the --log
set-up, error reporting and the process exit.

The click CLI (:mod:`pyoci.cli`) parses every command; :mod:`pyoci.cli_fast` parses the
plain forms of `create` and `run` without importing click. Both hand their global options
to :func:`apply_globals` and report failures through :func:`fail`, so a command behaves
the same whichever of them parsed it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the hot path
if TYPE_CHECKING:
    from typing import NoReturn

DEFAULT_ROOT = "/run/pyoci"


class Globals:
    """The global options, for the commands and for error reporting.

    A plain class rather than a dataclass: importing dataclasses costs every hot-path call.
    """

    def __init__(self) -> None:
        self.root: str = DEFAULT_ROOT
        self.log: str | None = None
        self.log_format: str = "text"
        self.debug: bool = False
        self.systemd_cgroup: bool = False
        self.rootless: str = "auto"


def apply_globals(obj: Globals) -> None:
    """Act on the global options once parsed: --rootless, and the --log file or stderr.

    With --debug (or `logging` already loaded, as in a test run) the "pyoci" logger's
    handler is set up now. Otherwise only the --log file is created now (it must exist
    even when nothing is logged, as runc's does), and the handler is set up the moment
    `logging` is imported (:class:`_LogOnImport`): library code logs only through a
    `logging` it imports, so every record still finds the handler, while a command that
    logs nothing (nearly all of them) never pays for importing logging.
    """
    if obj.rootless != "auto":
        from pyoci import userns  # what to do with cgroup permission errors, as runc

        userns.ROOTLESS = obj.rootless
    if obj.debug or "logging" in sys.modules:
        setup_log(obj)
        return
    if obj.log:
        os.close(os.open(obj.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         0o666))
    _LogOnImport.install(obj)


def setup_log(obj: Globals) -> None:
    """The "pyoci" logger's one handler: the --log file or stderr."""
    from pyoci import log

    log.setup(obj.log, obj.log_format, obj.debug)
    if obj.debug:
        import logging

        logging.getLogger(log.LOGGER_NAME).debug("pyoci %s", " ".join(sys.argv[1:]))


class _LogOnImport:
    """A meta path finder that hands the import of `logging` to the usual finder and sets
    the handler up as soon as the module has run (see :func:`apply_globals`)."""

    _installed: _LogOnImport | None = None

    def __init__(self, obj: Globals) -> None:
        self.obj = obj

    @classmethod
    def install(cls, obj: Globals) -> None:
        cls.uninstall()
        cls._installed = cls(obj)
        sys.meta_path.insert(0, cls._installed)

    @classmethod
    def uninstall(cls) -> None:
        if cls._installed is not None and cls._installed in sys.meta_path:
            sys.meta_path.remove(cls._installed)
        cls._installed = None

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name != "logging":
            return None
        self.uninstall()
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _SetupAfter(spec.loader, self.obj)
        return spec


class _SetupAfter:
    """The loader of `logging`, then :func:`setup_log` (and the real loader put back)."""

    def __init__(self, loader: object, obj: Globals) -> None:
        self.loader, self.obj = loader, obj

    def create_module(self, spec: object) -> object:
        return self.loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # type: ignore[attr-defined]
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        setup_log(self.obj)

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)


def one_line(msg: str) -> str:
    """Callers read the last line of stderr as the reason, so keep it to one line."""
    return " ".join(part.strip() for part in msg.splitlines() if part.strip())


def fail(obj: Globals, msg: str) -> int:
    """Report an error like runc's fatal(): the --log record, then one stderr line; 1."""
    msg = one_line(msg)
    if obj.log or "pyoci.log" in sys.modules:
        import logging  # noqa: F401 - sets the handler up if it waited for this import

        from pyoci import log

        log.error(msg)
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
    return 1


def report(obj: Globals, e: BaseException, prefix: str = "") -> int:
    """:func:`fail` for an exception (after ``prefix``): its traceback first with --debug."""
    if obj.debug:
        import traceback

        traceback.print_exception(e)
    return fail(obj, prefix + (str(e) or type(e).__name__))


def finish() -> None:
    """Detach the log handler (tests run many commands in one process)."""
    _LogOnImport.uninstall()
    if "pyoci.log" in sys.modules:
        from pyoci import log

        log.shutdown()


def create_options(pid_file: str | None, console_socket: str | None, no_pivot: bool,
                   no_new_keyring: bool, preserve_fds: int) -> dict[str, object]:
    """Keyword arguments for Container.create / run, paths made absolute as runc does."""
    return {
        "pid_file": os.path.abspath(pid_file) if pid_file else None,
        "console_socket": console_socket,
        "no_pivot": no_pivot,
        "no_new_keyring": no_new_keyring,
        "preserve_fds": preserve_fds,
    }


def delete_container(container_id: str, root: str, force: bool) -> None:
    """`delete`, as runc's: with --force a missing container is no error, and one whose
    state cannot be read is removed all the same."""
    from pyoci.container import Container
    from pyoci.errors import ContainerNotFound, CorruptState

    try:
        container = Container.load(container_id, root)
    except ContainerNotFound:
        if force:
            return
        raise
    except CorruptState:
        if not force:
            raise
        container = Container(container_id, root)  # --force removes what cannot be read
    container.delete(force=force)


def exit_now(code: object) -> NoReturn:
    """Exit with ``code`` without the interpreter's teardown.

    Freeing every module and object at exit costs more than the whole work of `state` or
    `kill`, and nobody needs it: the kernel takes the memory back. What an exit must do
    still happens: the atexit handlers run (logging's flushes the --log file), then stdout
    and stderr are flushed. With a thread still running, a message for SystemExit or a
    failing flush, the interpreter exits as usual instead.
    """
    threading = sys.modules.get("threading")
    if not isinstance(code, int) or (threading is not None and threading.active_count() > 1):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)  # the interpreter reports the failed flush (exit 120) as ever
    os._exit(code)
