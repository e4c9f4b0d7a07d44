"""The `pyoci` command line: runc's commands and flags, and nothing but parsing and printing.

Library modules are imported inside each command, never here, so that the hot paths
(`state`, `kill`, `start`, called many times per container by containerd and podman)
don't pay for what only `create` needs (config validation, seccomp, ...).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn


class _Deferred(type(sys)):  # types.ModuleType, without importing types
    """A module whose code runs the first time one of its attributes is looked up."""

    def __getattr__(self, name: str) -> Any:
        self.__class__ = type(sys)
        self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def _defer(*names: str) -> None:
    """Load these standard modules on their first use instead of at their import.

    click imports ``inspect`` (which imports ast, dis, tokenize, ...) for what only help
    output and a few rare paths use: about 12 ms, more than a command's own work. pathlib
    imports ``ntpath`` for Windows paths, and urllib.parse (which pathlib imports)
    ``ipaddress`` for URLs with a bracketed host: 2.5 ms more, for what pyoci never does.
    (Not ``uuid``: click subclasses a generic of uuid.UUID at import.) None of them is
    used by the container's init, which must not load a module after pivot_root: its
    files are gone then. Each gets a module object
    that runs the real module's code the moment anything but its import attributes
    (``__spec__``, ``__name__``, ...) is looked up, so nothing is lost: it is only paid
    for when it is used. (importlib's LazyLoader would not do: the import statement itself
    looks ``__spec__`` up, which runs its module at the next ``import inspect``.) A module
    already imported (by an embedding program) is left as it is.
    """
    from importlib.util import find_spec, module_from_spec

    for name in names:
        if name in sys.modules:
            continue
        spec = find_spec(name)
        if spec is None or spec.loader is None:
            continue
        module = module_from_spec(spec)
        module.__class__ = _Deferred
        sys.modules[name] = module


_defer("inspect", "ipaddress", "ntpath")

import click  # noqa: E402 - after _defer, on purpose

from pyoci.cli_common import (  # noqa: E402
    DEFAULT_ROOT,
    Globals,
    apply_globals,
    create_options,
    delete_container,
    exit_now,
    fail,
    finish,
    report,
)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _Option(click.Option):
    """An option whose help text is kept as written.

    click runs every option's help through inspect.cleandoc when the option is made, which
    imports inspect on every call for a text that only --help shows. Ours are one line
    without indentation, which cleandoc leaves as they are (tests check this).
    """

    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any) -> None:  # noqa: A002
        super().__init__(*args, **kwargs)
        self.help = help


# Commands are made when first looked up, not at import: a call makes only its own
# command (and the group), not all seventeen with their seventy-odd options. _option and
# _argument note what to make on the function; _command files it under its name.
_COMMANDS: dict[str, Callable[[], click.Command]] = {}


def _option(*param_decls: str, **attrs: Any) -> Callable[[Any], Any]:
    """click.option (with :class:`_Option`), made with its command."""
    return _note("option", param_decls, attrs)


def _argument(*param_decls: str, **attrs: Any) -> Callable[[Any], Any]:
    """click.argument, made with its command."""
    return _note("argument", param_decls, attrs)


def _note(kind: str, param_decls: tuple[str, ...], attrs: dict[str, Any]
          ) -> Callable[[Any], Any]:
    def decorator(f: Any) -> Any:
        f.__dict__.setdefault("__pyoci_params__", []).append((kind, param_decls, attrs))
        return f

    return decorator


def _made(f: Any) -> Any:
    """``f`` with its noted parameters made, in the order click's own decorators give."""
    for kind, param_decls, attrs in f.__dict__.pop("__pyoci_params__", []):
        if kind == "option":
            f = click.option(*param_decls, cls=_Option, **attrs)(f)
        else:
            f = click.argument(*param_decls, **attrs)(f)
    return f


def _command(name: str | None = None, **attrs: Any) -> Callable[[Any], Any]:
    """``@_command(name, **attrs)``, made when the group first looks ``name`` up."""

    def register(f: Any) -> Any:
        def make() -> click.Command:
            return click.command(name, cls=_Command, **attrs)(_made(f))

        _COMMANDS[name or f.__name__] = make
        return f

    return register


def _show_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _short_first_parser() -> type | None:
    """click's option parser, matching a short option (`-b`) as one straight away.

    click first looks every option up as a long one and, for `-b`, builds a NoSuchOption
    error (importing difflib for its did-you-mean) only to catch it and match `-b` as a
    short option: on every call, even a correct one. This parser goes where click ends up,
    without the detour. None for a click whose parser is not the one this was written for.
    """
    try:
        from click.parser import _normalize_opt, _OptionParser
    except ImportError:
        return None

    class _Parser(_OptionParser):
        def _process_opts(self, arg: str, state: Any) -> None:
            if (arg[:2] not in self._opt_prefixes
                    and _normalize_opt(arg.split("=", 1)[0], self.ctx) not in self._long_opt):
                self._match_short_opt(arg, state)
                return
            super()._process_opts(arg, state)

    return _Parser


_PARSER = _short_first_parser()


class _ShortFirst:
    """Mixin: commands parse with :data:`_PARSER`; their --help is made without gettext.

    click words its help option through gettext, whose every lookup imports locale and
    searches the disk for translations (click ships none), on every call: the option is
    made here with click's English text instead, the same option otherwise.
    """

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        if getattr(self, "_help_option", False) is None and self.add_help_option:  # type: ignore[attr-defined]
            names = self.get_help_option_names(ctx)  # type: ignore[attr-defined]
            if names:
                storage = getattr(click.core, "_HELP_OPTION_STORAGE_NAME", None)
                self._help_option = _Option(
                    [*names, storage] if storage else names, is_flag=True,
                    expose_value=False, is_eager=True, callback=_show_help,
                    help="Show this message and exit.")
        return super().get_help_option(ctx)  # type: ignore[misc]

    def make_parser(self, ctx: click.Context) -> Any:
        if _PARSER is None:
            return super().make_parser(ctx)  # type: ignore[misc]
        parser = _PARSER(ctx)
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            param.add_to_parser(parser, ctx)
        return parser


class _Command(_ShortFirst, click.Command):
    pass


class _Group(_ShortFirst, click.Group):
    """A Group whose every failure is one stderr line and exit 1, as runc's are, and whose
    commands are made on first lookup (see :func:`_command`)."""

    command_class = _Command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        make = _COMMANDS.pop(cmd_name, None)
        if make is not None:
            self.add_command(make(), cmd_name)
        elif cmd_name not in self.commands:  # an unknown name: click lists self.commands
            for name in list(_COMMANDS):      # as the possibilities, so make them all
                self.add_command(_COMMANDS.pop(name)(), name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_COMMANDS})

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        obj = extra.setdefault("obj", Globals())
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.format_message())  # bare `pyoci`: help on stdout, exit 0 like runc
            code = 0
        except click.ClickException as e:
            code = fail(obj, e.format_message())
        except click.Abort:
            code = fail(obj, "interrupted")
        except Exception as e:  # anything at all must still come out as one line
            code = report(obj, e)
        finally:
            finish()
        sys.exit(code)


def _check_args(ctx: click.Context, args: Sequence[str], exact: int | None = None,
                minimum: int | None = None, maximum: int | None = None) -> None:
    """Argument-count errors in runc's words (its checkArgs), not click's."""
    prog, name = ctx.find_root().info_name, ctx.info_name
    if exact is not None and len(args) != exact:
        raise click.UsageError(f'{prog}: "{name}" requires exactly {exact} argument(s)')
    if minimum is not None and len(args) < minimum:
        raise click.UsageError(f'{prog}: "{name}" requires a minimum of {minimum} argument(s)')
    if maximum is not None and len(args) > maximum:
        raise click.UsageError(f'{prog}: "{name}" requires a maximum of {maximum} argument(s)')


def _container_id(ctx: click.Context, args: Sequence[str]) -> str:
    """The one <container-id> argument, checked before any library call can touch the disk."""
    _check_args(ctx, args, exact=1)
    from pyoci.validate import check_container_id

    check_container_id(args[0])
    return args[0]


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`--version`, laid out like runc's."""
    if not value or ctx.resilient_parsing:
        return
    import platform

    from pyoci import __version__
    from pyoci.features import libseccomp_version
    from pyoci.spec import default_spec

    click.echo(f"pyoci version {__version__}")
    click.echo(f"spec: {default_spec(False)['ociVersion']}")
    click.echo(f"python: {platform.python_version()}")
    seccomp = libseccomp_version()
    if seccomp:
        click.echo(f"libseccomp: {seccomp}")
    ctx.exit(0)


def _group(**attrs: Any) -> Callable[[Any], _Group]:
    return lambda f: click.group(cls=_Group, **attrs)(_made(f))


@_group(name="pyoci", context_settings=CONTEXT_SETTINGS, no_args_is_help=True)
@_option("--root", default=DEFAULT_ROOT, show_default=True, metavar="PATH",
              help="Root directory for storage of container state (should be on tmpfs).")
@_option("--log", "log_path", metavar="PATH",
              help="Append errors (and debug records with --debug) to this file.")
@_option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Format of --log records.")
@_option("--debug", is_flag=True, help="Enable debug logging and error tracebacks.")
@_option("--systemd-cgroup", is_flag=True,
              help="Use systemd for cgroups (paths are slice:prefix:name).")
@_option("--rootless", type=click.Choice(["true", "false", "auto"]), default="auto",
              show_default=True, help="Ignore cgroup permission errors.")
@_option("--version", "-v", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Print the version.")
@click.pass_context
def cli(ctx: click.Context, root: str, log_path: str | None, log_format: str, debug: bool,
        systemd_cgroup: bool, rootless: str) -> None:
    """Run OCI containers; a drop-in for runc."""
    obj = ctx.ensure_object(Globals)
    if (os.geteuid() != 0 and root == DEFAULT_ROOT
            and ctx.get_parameter_source("root") is click.core.ParameterSource.DEFAULT):
        from pyoci.userns import default_root  # as runc: $XDG_RUNTIME_DIR/pyoci for a user

        root = default_root(DEFAULT_ROOT)
    obj.root = os.path.abspath(root)
    obj.log, obj.log_format, obj.debug = log_path, log_format, debug
    obj.systemd_cgroup, obj.rootless = systemd_cgroup, rootless
    apply_globals(obj)


def _create_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The flags `create` and `run` share."""
    options = [
        _option("--bundle", "-b", default=".", metavar="PATH",
                     help="Path to the bundle directory (holding config.json)."),
        _option("--pid-file", metavar="PATH", help="Write the container's pid here."),
        _option("--console-socket", metavar="PATH",
                     help="AF_UNIX socket to send the console pty master to."),
        _option("--no-pivot", is_flag=True, help="Use chroot instead of pivot_root."),
        _option("--no-new-keyring", is_flag=True,
                     help="Keep the caller's session keyring."),
        _option("--preserve-fds", type=click.IntRange(min=0), default=0, metavar="N",
                     help="Pass N extra fds (from 3) to the container."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_ID = {"nargs": -1, "metavar": "<container-id>"}


@_command()
@_argument("args", **_ID)
@_create_options
@click.pass_context
def create(ctx: click.Context, args: tuple[str, ...], bundle: str, **opts: Any) -> None:
    """Create a container, its process waiting for `start`."""
    cid = _container_id(ctx, args)
    _no_systemd_cgroup(ctx)
    from pyoci.container import Container

    Container.create(cid, os.path.abspath(bundle), ctx.obj.root, **create_options(**opts))


@_command()
@_argument("args", **_ID)
@_create_options
@_option("--detach", "-d", is_flag=True, help="Return once the container is started.")
@_option("--keep", is_flag=True, help="Don't delete the container after it exits.")
@_option("--no-subreaper", is_flag=True,
              help="Don't become a subreaper: orphans of the container aren't reaped.")
@click.pass_context
def run(ctx: click.Context, args: tuple[str, ...], bundle: str, detach: bool, keep: bool,
        no_subreaper: bool, **opts: Any) -> None:
    """Create and start a container, exiting with its exit code unless detached."""
    cid = _container_id(ctx, args)
    _no_systemd_cgroup(ctx)
    from pyoci.container import Container

    code = Container.run(cid, os.path.abspath(bundle), ctx.obj.root, detach=detach,
                         keep=keep, no_subreaper=no_subreaper, **create_options(**opts))
    ctx.exit(code)


@_command()
@_argument("args", **_ID)
@click.pass_context
def start(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run the user process of a created container."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container

    Container.load(cid, ctx.obj.root).start()


@_command()
@_argument("args", **_ID)
@click.pass_context
def state(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Print the container's OCI state as JSON."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container

    click.echo(json.dumps(Container.load(cid, ctx.obj.root).state(), indent=2))


@_command()
@_argument("args", nargs=-1, metavar="<container-id> [signal]")
@_option("--all", "-a", "all_", is_flag=True,
              help="Send the signal to every process in the container.")
@click.pass_context
def kill(ctx: click.Context, args: tuple[str, ...], all_: bool) -> None:
    """Send a signal (default SIGTERM) to the container's init process."""
    _check_args(ctx, args, minimum=1, maximum=2)
    cid = _container_id(ctx, args[:1])
    from pyoci.container import Container
    from pyoci.signals import parse_signal

    container = Container.load(cid, ctx.obj.root)
    # An empty signal is the default, as in runc (`kill ID ""` sends SIGTERM).
    container.kill(parse_signal(args[1] if len(args) > 1 and args[1] else "SIGTERM"),
                   all=all_)


@_command()
@_argument("args", **_ID)
@_option("--force", "-f", is_flag=True, help="Kill the container first if it is running.")
@click.pass_context
def delete(ctx: click.Context, args: tuple[str, ...], force: bool) -> None:
    """Delete a container's resources; with --force a missing container is not an error."""
    delete_container(_container_id(ctx, args), ctx.obj.root, force)


@_command("list")
@_argument("args", nargs=-1, metavar="")
@_option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@_option("--quiet", "-q", is_flag=True, help="Print only container ids.")
@click.pass_context
def list_(ctx: click.Context, args: tuple[str, ...], fmt: str, quiet: bool) -> None:
    """List the containers under --root."""
    _check_args(ctx, args, exact=0)
    from pyoci.container import Container

    items = Container.list(ctx.obj.root)
    if quiet:
        for item in items:
            click.echo(item["id"])
    elif fmt == "json":
        # runc encodes a nil slice, so no containers prints `null`.
        click.echo(json.dumps(items or None, separators=(",", ":")))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[str(item.get(key, "")) for key in ("id", "pid", "status", "bundle",
                                                     "created", "owner")] for item in items]
        click.echo(format_table(rows), nl=False)


def format_table(rows: list[list[str]], minwidth: int = 12, padding: int = 3) -> str:
    """Align like Go's tabwriter.NewWriter(out, 12, 1, 3, ' ', 0), as runc's list does.

    Every cell but the last of a row is padded to max(minwidth, widest + padding).
    """
    ncols = max((len(row) for row in rows), default=0)
    widths = [
        max([minwidth] + [len(row[i]) + padding for row in rows if i < len(row) - 1])
        for i in range(ncols - 1)
    ]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else "") + "\n")
    return "".join(lines)


@_command()
@_argument("args", nargs=-1, metavar="")
@_option("--bundle", "-b", default=".", metavar="PATH",
              help="Directory to write config.json into.")
@_option("--rootless", is_flag=True, help="Generate a spec for a rootless container.")
@click.pass_context
def spec(ctx: click.Context, args: tuple[str, ...], bundle: str, rootless: bool) -> None:
    """Write a default config.json into the bundle."""
    _check_args(ctx, args, exact=0)
    from pyoci.errors import PyociError
    from pyoci.spec import default_spec

    text = json.dumps(default_spec(rootless), indent="\t")
    path = os.path.normpath(os.path.join(bundle, "config.json"))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise PyociError(f"File {path} exists. Remove it first") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@_command()
@_argument("args", nargs=-1, metavar="")
@click.pass_context
def features(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Print the runtime-spec features document (what this build and host support)."""
    _check_args(ctx, args, exact=0)
    from pyoci.features import features as features_document

    # as runc prints it: 4-space indent, one trailing newline
    click.echo(json.dumps(features_document(), indent=4))


def _no_systemd_cgroup(ctx: click.Context) -> None:
    if ctx.obj.systemd_cgroup:
        raise click.ClickException("systemd cgroup driver is not supported")


@_command()
@_argument("args", **_ID)
@click.pass_context
def pause(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Suspend every process in the container (cgroup freezer)."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container
    from pyoci.container.pause import pause as pause_container

    pause_container(Container.load(cid, ctx.obj.root))


@_command()
@_argument("args", **_ID)
@click.pass_context
def resume(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Resume every process of a paused container."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container
    from pyoci.container.resume import resume as resume_container

    resume_container(Container.load(cid, ctx.obj.root))


_UPDATE_FLAGS = [
    ("--blkio-weight", int, "Per cgroup weight, from 10 to 1000."),
    ("--cpu-period", str, "CPU CFS period (usecs); 0 for the system default."),
    ("--cpu-quota", str, "CPU CFS hardcap limit (usecs) in a period."),
    ("--cpu-burst", str, "CPU CFS burst limit (usecs) in a period."),
    ("--cpu-share", str, "CPU shares (relative weight vs. other containers)."),
    ("--cpu-rt-period", str, "CPU realtime period (usecs)."),
    ("--cpu-rt-runtime", str, "CPU realtime hardcap limit (usecs) in a period."),
    ("--cpuset-cpus", str, "CPU(s) to use."),
    ("--cpuset-mems", str, "Memory node(s) to use."),
    ("--cpu-idle", str, "SCHED_IDLE for the cgroup (1) or not (0)."),
    ("--kernel-memory", str, "Obsolete; ignored."),
    ("--kernel-memory-tcp", str, "Obsolete; ignored."),
    ("--memory", str, "Memory limit (bytes; k, m, g suffixes)."),
    ("--memory-reservation", str, "Memory reservation or soft limit (bytes)."),
    ("--memory-swap", str, "Memory + swap limit (bytes); -1 for unlimited swap."),
    ("--pids-limit", int, "Maximum number of pids in the container."),
    ("--l3-cache-schema", str, "Intel RDT/CAT L3 cache schema (not supported)."),
    ("--mem-bw-schema", str, "Intel RDT/MBA memory bandwidth schema (not supported)."),
]


def _update_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for flag, kind, text in reversed(_UPDATE_FLAGS):
        func = _option(flag, type=kind, default=None, metavar="VALUE", help=text)(func)
    return _option("--resources", "-r", metavar="FILE|-",
                        help="LinuxResources JSON to apply ('-': standard input).")(func)


@_command()
@_argument("args", **_ID)
@_update_options
@click.pass_context
def update(ctx: click.Context, args: tuple[str, ...], resources: str | None,
           **flags: Any) -> None:
    """Update a container's resource limits."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container
    from pyoci.container.update import from_flags, read_resources
    from pyoci.container.update import update as update_container
    from pyoci.errors import PyociError

    if flags.pop("l3_cache_schema") or flags.pop("mem_bw_schema"):
        raise PyociError("Intel RDT is not supported")
    container = Container.load(cid, ctx.obj.root)
    update_container(container, read_resources(resources) if resources else from_flags(flags))


@_command()
@_argument("args", **_ID)
@_option("--interval", default="5s", metavar="DURATION",
              help="The stats collection interval.")
@_option("--stats", is_flag=True, help="Display the container's stats then exit.")
@click.pass_context
def events(ctx: click.Context, args: tuple[str, ...], interval: str, stats: bool) -> None:
    """Display the container's stats and OOM notifications (JSON lines)."""
    cid = _container_id(ctx, args)
    from pyoci.container import Container
    from pyoci.container.events import events as container_events
    from pyoci.container.events import parse_duration

    container_events(Container.load(cid, ctx.obj.root), stats=stats,
                     interval=parse_duration(interval))


@_command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@_option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@_argument("args", nargs=-1, metavar="<container-id> [ps options]")
@click.pass_context
def ps(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Display the processes running inside a container."""
    _check_args(ctx, args, minimum=1)
    cid = _container_id(ctx, args[:1])
    from pyoci.container import Container
    from pyoci.container.ps import ps as container_ps

    click.echo(container_ps(Container.load(cid, ctx.obj.root), fmt, list(args[1:])), nl=False)


@_command("exec", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@_argument("args", nargs=-1, type=click.UNPROCESSED,
                metavar="<container-id> <command> [command options]")
@_option("--console-socket", metavar="PATH",
              help="AF_UNIX socket to send the pty master to (with --tty).")
@_option("--cwd", metavar="PATH", help="Working directory in the container.")
@_option("--env", "-e", multiple=True, metavar="NAME=VALUE",
              help="Set an environment variable (repeatable).")
@_option("--tty", "-t", is_flag=True, help="Allocate a pseudo-TTY.")
@_option("--user", "-u", metavar="UID[:GID]", help="The user (and group) to run as.")
@_option("--additional-gids", "-g", multiple=True, type=int, metavar="GID",
              help="An additional group (repeatable).")
@_option("--process", "-p", "process_file", metavar="FILE",
              help="process.json: the whole process (the flags above are then ignored).")
@_option("--detach", "-d", is_flag=True, help="Return once the process has started.")
@_option("--pid-file", metavar="PATH", help="Write the process's pid here.")
@_option("--process-label", metavar="LABEL", help="The SELinux label of the process.")
@_option("--apparmor", metavar="PROFILE", help="The AppArmor profile of the process.")
@_option("--no-new-privs", is_flag=True, help="Set no_new_privs for the process.")
@_option("--cap", "-c", multiple=True, metavar="CAP",
              help="Add a capability to every set (repeatable).")
@_option("--preserve-fds", type=click.IntRange(min=0), default=0, metavar="N",
              help="Pass N extra fds (from 3) to the process.")
@_option("--cgroup", multiple=True, metavar="[CONTROLLER:]PATH",
              help="Run in this (existing) sub-cgroup of the container (repeatable).")
@_option("--ignore-paused", is_flag=True, help="Exec even in a paused container.")
@click.pass_context
def exec_(ctx: click.Context, args: tuple[str, ...], process_file: str | None,
          pid_file: str | None, cgroup: tuple[str, ...], **opts: Any) -> None:
    """Run a new process in a container: its exit code, 255 if pyoci itself fails."""
    _check_args(ctx, args, minimum=1)
    try:
        cid = _container_id(ctx, args[:1])
        from pyoci.container.exec import exec_process

        code = exec_process(cid, ctx.obj.root, list(args[1:]), process_file=process_file,
                            pid_file=os.path.abspath(pid_file) if pid_file else None,
                            cgroups=cgroup, **opts)
    except Exception as e:  # runc: fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)
        report(ctx.obj, e, "exec failed: ")
        code = 255
    ctx.exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line; raises SystemExit with its exit code."""
    cli.main(args=argv, prog_name="pyoci")


def entry() -> NoReturn:
    """What the process entry point runs: :func:`main`, then :func:`exit_now`."""
    try:
        main()
    except SystemExit as e:
        code = e.code
    exit_now(code)
