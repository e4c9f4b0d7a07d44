"""Running OCI hooks: the state on stdin, ``timeout`` enforced, failures raised."""

from __future__ import annotations

from pyoci import jsonio
from pyoci.errors import PyociError


class HookError(PyociError):
    pass


# Run by the container's init, after pivot_root: the host's Python files are out of reach.
IN_CONTAINER = ("createContainer", "startContainer")


def preload(config: dict) -> None:
    """Import what running hooks takes now, before the fork, if the config has hooks that
    init runs in the container (where no module can be loaded any more); the runtime's own
    hooks import it when they run, and a config without hooks never does."""
    hooks = config.get("hooks") or {}
    if any(hooks.get(kind) for kind in IN_CONTAINER):
        import subprocess  # noqa: F401


def run_hooks(hooks: list[dict] | None, state: dict, kind: str) -> None:
    """Run each hook in order; the first failure raises :class:`HookError`.

    ``poststop`` hooks are the exception: a failing one must not keep the others
    from running (the spec makes it a warning), so all run, and then one error
    naming every failure is raised, for the caller to log as a warning.
    """
    if not hooks:
        return
    payload = jsonio.dumps(state).encode()
    failures: list[str] = []
    for hook in hooks:
        try:
            _run_one(hook, payload, kind)
        except HookError as e:
            if kind != "poststop":
                raise
            failures.append(str(e))
    if failures:
        raise HookError("; ".join(failures))


def _run_one(hook: dict, payload: bytes, kind: str) -> None:
    import subprocess  # here: a config without hooks (most) never needs it; see preload

    path = hook["path"]
    args = hook.get("args") or [path]
    env = dict(e.split("=", 1) for e in hook.get("env", []) if "=" in e)
    try:
        proc = subprocess.Popen(args, executable=path, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                close_fds=True)
    except OSError as e:
        raise HookError(f"error running {kind} hook {path}: {e.strerror}") from None
    try:
        out, err = proc.communicate(payload, timeout=hook.get("timeout"))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HookError(f"error running {kind} hook {path}: timed out after "
                        f"{hook['timeout']}s") from None
    except BrokenPipeError:
        out, err = b"", b""
        proc.wait()
    except BaseException:  # interrupted (create got SIGTERM): leave no hook running
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        why = f"exit status {proc.returncode}" if proc.returncode > 0 else \
            f"killed by signal {-proc.returncode}"
        raise HookError(f"error running {kind} hook {path}: {why}"
                        + (f": {detail[-1]}" if detail else ""))
