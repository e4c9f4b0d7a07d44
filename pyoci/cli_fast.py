"""`create` and `run` in their plain forms, parsed without click.

Importing click (with the enum, typing, datetime, ... it pulls in) takes about as long as
runc's whole `run`, and engines call `create` once per container. This parser knows
runc's global options and the flags of `create` and `run`, in the spellings engines use
(``--opt VALUE``, ``--opt=VALUE``, ``-b VALUE``, ``-d``), and nothing else: anything it
does not know for certain (help, another command, an unknown, doubtful or malformed
option, a wrong number of arguments, an unprivileged default root, --debug,
--systemd-cgroup) is left to the click CLI, which parses it and words the error. Both
hand the same values to the same library calls (tests/unit/test_cli_fast.py holds them
to that), so where this parser answers, it answers as click would.
"""

from __future__ import annotations

import os
import sys

from pyoci.cli_common import (
    Globals,
    apply_globals,
    create_options,
    fail,
    finish,
    report,
)

_GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format",
                  "--rootless": "rootless"}
_CHOICES = {"log_format": ("text", "json"), "rootless": ("true", "false", "auto")}
_VALUES = {"--bundle": "bundle", "-b": "bundle", "--pid-file": "pid_file",
           "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"}
_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}
_RUN_FLAGS = {"--detach": "detach", "-d": "detach", "--keep": "keep",
              "--no-subreaper": "no_subreaper"}


class Invocation:
    """A parsed `create` or `run`: the global options, the id and the command's options."""

    def __init__(self, command: str, obj: Globals, container_id: str,
                 options: dict[str, object]) -> None:
        self.command, self.obj = command, obj
        self.container_id, self.options = container_id, options


def _split(arg: str) -> tuple[str, str | None]:
    """``--opt=VALUE`` as (``--opt``, VALUE); anything else as (arg, None)."""
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return name, value
    return arg, None


def parse(argv: list[str]) -> Invocation | None:
    """The invocation ``argv`` (without the program name) asks for, or None for click."""
    obj = Globals()
    root_given = False
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, value = _split(argv[i])
        attr = _GLOBAL_VALUES.get(name)
        if attr is None:
            return None
        if value is None:
            i += 1
            if i == len(argv) or argv[i].startswith("-"):
                return None
            value = argv[i]
        if attr in _CHOICES and value not in _CHOICES[attr]:
            return None
        setattr(obj, attr, value)
        root_given = root_given or attr == "root"
        i += 1
    if i == len(argv) or argv[i] not in ("create", "run"):
        return None
    if os.geteuid() != 0 and not root_given:
        return None  # the default root is then the user's own (pyoci.userns.default_root)
    command = argv[i]
    flags = _FLAGS if command == "create" else {**_FLAGS, **_RUN_FLAGS}
    opts: dict[str, object] = {"bundle": ".", "pid_file": None, "console_socket": None,
                               "preserve_fds": 0, **{f: False for f in flags.values()}}
    ids = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            ids.append(arg)
            continue
        name, value = _split(arg)
        if name in flags and value is None:
            opts[flags[name]] = True
            continue
        attr = _VALUES.get(name)
        if attr is None:
            return None
        if value is None:
            if i == len(argv) or argv[i].startswith("-"):
                return None
            value = argv[i]
            i += 1
        if attr == "preserve_fds":
            if not (value.isascii() and value.isdigit()):
                return None
            opts[attr] = int(value)
        else:
            opts[attr] = value
    if len(ids) != 1:
        return None
    obj.root = os.path.abspath(obj.root)
    return Invocation(command, obj, ids[0], opts)


def invoke(inv: Invocation) -> int:
    """Run a parsed invocation as the click CLI would: its exit code, errors reported."""
    obj = inv.obj
    try:
        apply_globals(obj)
        from pyoci.validate import check_container_id

        check_container_id(inv.container_id)
        from pyoci.container import Container

        opts = dict(inv.options)
        bundle = os.path.abspath(opts.pop("bundle"))  # type: ignore[call-overload]
        run_opts = {k: opts.pop(k) for k in ("detach", "keep", "no_subreaper") if k in opts}
        kwargs = create_options(**opts)  # type: ignore[arg-type]
        if inv.command == "create":
            Container.create(inv.container_id, bundle, obj.root, **kwargs)
            return 0
        return Container.run(inv.container_id, bundle, obj.root, **run_opts, **kwargs)
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")  # as click does before its Abort
        return fail(obj, "interrupted")
    except Exception as e:  # anything at all must still come out as one line
        if isinstance(e, OSError) and e.errno == 32:  # EPIPE: click exits 1, silently
            return 1
        return report(obj, e)
    finally:
        finish()


def main(argv: list[str]) -> int | None:
    """The exit code of a plain `create` or `run`, or None: leave ``argv`` to click."""
    inv = parse(argv)
    return None if inv is None else invoke(inv)
