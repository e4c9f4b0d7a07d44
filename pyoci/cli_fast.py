"""`create`, `run`, `exec`, `pause`, `resume` and `delete` in their plain forms, parsed
without click.

Importing click (with the enum, typing, datetime, ... it pulls in) takes about as long as
runc's whole `run`, and engines call `create` once per container (and `exec` for every
probe; `delete` reaches Python whenever the front door leaves it, such as for a created
container). This parser knows runc's global options and the usual flags of these
commands, in the spellings engines use (``--opt VALUE``, ``--opt=VALUE``, ``-b VALUE``,
``-d``), and nothing else: anything it does not know for certain (help, another command,
an unknown, rarer, doubtful or malformed option, a wrong number of arguments, an
unprivileged default root, --debug, --systemd-cgroup) is left to the click CLI, which
parses it and words the error. Both hand the same values to the same library calls
(tests/unit/test_cli_fast.py holds them to that), so where this parser answers, it
answers as click would.
"""

from __future__ import annotations

import os
import sys

from pyoci.cli_common import (
    Globals,
    apply_globals,
    create_options,
    delete_container,
    fail,
    finish,
    report,
)

_GLOBALS = {"--root": "root", "--log": "log", "--log-format": "log_format",
            "--rootless": "rootless"}
_CHOICES = {"log_format": ("text", "json"), "rootless": ("true", "false", "auto")}


class _Syntax:
    """One command's options: name -> keyword, for those taking a value, the flags, and
    the repeatable ones; the defaults click gives them; whether options may follow the
    container id (`exec` takes everything after it as the process's arguments)."""

    def __init__(self, values: dict[str, str], flags: dict[str, str],
                 repeated: dict[str, str], defaults: dict[str, object],
                 interspersed: bool) -> None:
        self.values, self.flags, self.repeated = values, flags, repeated
        self.defaults, self.interspersed = defaults, interspersed


_CREATE_VALUES = {"--bundle": "bundle", "-b": "bundle", "--pid-file": "pid_file",
                  "--console-socket": "console_socket", "--preserve-fds": "preserve_fds"}
_CREATE_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}
_CREATE_DEFAULTS: dict[str, object] = {
    "bundle": ".", "pid_file": None, "console_socket": None, "preserve_fds": 0,
    "no_pivot": False, "no_new_keyring": False}
_RUN_FLAGS = {"--detach": "detach", "-d": "detach", "--keep": "keep",
              "--no-subreaper": "no_subreaper"}

_SYNTAX = {
    "create": _Syntax(_CREATE_VALUES, _CREATE_FLAGS, {}, _CREATE_DEFAULTS, True),
    "run": _Syntax(_CREATE_VALUES, {**_CREATE_FLAGS, **_RUN_FLAGS}, {},
                   {**_CREATE_DEFAULTS, "detach": False, "keep": False,
                    "no_subreaper": False}, True),
    "exec": _Syntax(
        {"--process": "process_file", "-p": "process_file", "--pid-file": "pid_file",
         "--console-socket": "console_socket", "--cwd": "cwd", "--user": "user",
         "-u": "user", "--preserve-fds": "preserve_fds"},
        {"--detach": "detach", "-d": "detach", "--tty": "tty", "-t": "tty",
         "--no-new-privs": "no_new_privs", "--ignore-paused": "ignore_paused"},
        {"--env": "env", "-e": "env"},
        # every option of click's exec, as click passes them; those this parser does not
        # know keep their defaults
        {"process_file": None, "pid_file": None, "console_socket": None, "cwd": None,
         "user": None, "preserve_fds": 0, "detach": False, "tty": False,
         "no_new_privs": False, "ignore_paused": False, "env": (), "cgroups": (),
         "additional_gids": (), "process_label": None, "apparmor": None, "cap": ()},
        False),
    "pause": _Syntax({}, {}, {}, {}, True),
    "resume": _Syntax({}, {}, {}, {}, True),
    "delete": _Syntax({}, {"--force": "force", "-f": "force"}, {}, {"force": False}, True),
}


class Invocation:
    """A parsed command: the global options, the positional arguments (the container id
    first) and the command's options."""

    def __init__(self, command: str, obj: Globals, args: list[str],
                 options: dict[str, object]) -> None:
        self.command, self.obj, self.args, self.options = command, obj, args, options


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
        attr = _GLOBALS.get(name)
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
    syntax = _SYNTAX.get(argv[i]) if i < len(argv) else None
    if syntax is None:
        return None
    if os.geteuid() != 0 and not root_given:
        return None  # the default root is then the user's own (pyoci.userns.default_root)
    command = argv[i]
    opts = dict(syntax.defaults)
    args: list[str] = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            args.append(arg)
            if not syntax.interspersed:
                args.extend(argv[i:])
                break
            continue
        name, value = _split(arg)
        if name in syntax.flags and value is None:
            opts[syntax.flags[name]] = True
            continue
        attr = syntax.values.get(name) or syntax.repeated.get(name)
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
        elif name in syntax.repeated:
            opts[attr] = (*opts[attr], value)  # type: ignore[misc]
        else:
            opts[attr] = value
    if not args or (syntax.interspersed and len(args) != 1):
        return None
    obj.root = os.path.abspath(obj.root)
    return Invocation(command, obj, args, opts)


def invoke(inv: Invocation) -> int:
    """Run a parsed invocation as the click CLI would: its exit code, errors reported."""
    obj = inv.obj
    try:
        apply_globals(obj)
        if inv.command == "exec":
            return _exec(inv)
        from pyoci.validate import check_container_id

        check_container_id(inv.args[0])
        if inv.command == "delete":
            delete_container(inv.args[0], obj.root, bool(inv.options["force"]))
            return 0
        from pyoci.container import Container

        if inv.command == "pause":
            from pyoci.container.pause import pause

            pause(Container.load(inv.args[0], obj.root))
            return 0
        if inv.command == "resume":
            from pyoci.container.resume import resume

            resume(Container.load(inv.args[0], obj.root))
            return 0
        opts = dict(inv.options)
        bundle = os.path.abspath(opts.pop("bundle"))  # type: ignore[call-overload]
        run_opts = {k: opts.pop(k) for k in ("detach", "keep", "no_subreaper") if k in opts}
        kwargs = create_options(**opts)  # type: ignore[arg-type]
        if inv.command == "create":
            Container.create(inv.args[0], bundle, obj.root, **kwargs)
            return 0
        return Container.run(inv.args[0], bundle, obj.root, **run_opts, **kwargs)
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")  # as click does before its Abort
        return fail(obj, "interrupted")
    except Exception as e:  # anything at all must still come out as one line
        if isinstance(e, OSError) and e.errno == 32:  # EPIPE: click exits 1, silently
            return 1
        return report(obj, e)
    finally:
        finish()


def _exec(inv: Invocation) -> int:
    """`exec`: the process's exit code; 255 with "exec failed: ..." when pyoci fails."""
    try:
        from pyoci.validate import check_container_id

        check_container_id(inv.args[0])
        from pyoci.container.exec import exec_process

        opts = dict(inv.options)
        pid_file = opts.pop("pid_file")
        return exec_process(inv.args[0], inv.obj.root, inv.args[1:],  # type: ignore[arg-type]
                            pid_file=os.path.abspath(pid_file) if pid_file else None,  # type: ignore[arg-type]
                            **opts)
    except Exception as e:  # runc: fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)
        report(inv.obj, e, "exec failed: ")
        return 255


def main(argv: list[str]) -> int | None:
    """The exit code of a plain form of one of these commands, or None: leave ``argv`` to
    click."""
    inv = parse(argv)
    return None if inv is None else invoke(inv)
