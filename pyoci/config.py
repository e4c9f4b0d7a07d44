"""Loading a bundle's config.json and rejecting bad ones before any container work starts.

jsonschema is imported lazily (it costs ~100-200ms) and only for a config that is invalid:
the generated pyoci.schema_fast answers "valid?" in well under a millisecond, and never says
yes where jsonschema says no (see pyoci/schema_compiler.py), so jsonschema is needed only to
find and word the error.  Commands such as state and kill must not import this module.
"""

from __future__ import annotations

import os

from pyoci import jsonio
from pyoci.errors import ConfigError
from pyoci.namespaces import NAMESPACES
from pyoci.schema_fast import is_valid

TYPE_CHECKING = False  # typing, pathlib, re and functools are not imported on the hot path
if TYPE_CHECKING:
    import pathlib
    from typing import Any

_validators: dict[str, Any] = {}


def schema_dir() -> pathlib.Path:
    """The bundled runtime-spec schemas."""
    import pathlib

    return pathlib.Path(__file__).parent / "schema"


def load_schema_validator(name: str = "config-schema.json") -> Any:
    """Return a Draft 4 validator for a bundled schema, its relative $refs resolved offline
    (made once per schema: it is slow)."""
    validator = _validators.get(name)
    if validator is None:
        validator = _validators[name] = _make_validator(name)
    return validator


def _make_validator(name: str) -> Any:
    import json

    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT4

    # The spec's schemas name each other by file name, so register every file by its
    # file:// URI and give the root schema that URI as its base.
    registry = Registry().with_resources(
        (path.as_uri(), DRAFT4.create_resource(json.loads(path.read_text())))
        for path in schema_dir().glob("*.json")
    )
    path = schema_dir() / name
    schema = {**json.loads(path.read_text()), "id": path.as_uri()}
    return jsonschema.Draft4Validator(schema, registry=registry)


def rootfs_path(config: dict, bundle: str) -> str:
    """Absolute path of the root filesystem; a relative root.path is relative to the bundle."""
    # runc resolves against its working directory after chdir(bundle), i.e. the real path.
    return os.path.normpath(os.path.join(os.path.realpath(bundle), config["root"]["path"]))


def load_config(bundle: str) -> dict:
    """Read, parse and check <bundle>/config.json; every failure is one ConfigError line."""
    if not os.path.isdir(bundle):
        raise ConfigError(f"bundle directory {bundle} does not exist")
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"config.json: {e.strerror}") from None
    try:
        config = jsonio.loads(data)
    except jsonio.JSONDecodeError as e:
        raise ConfigError(
            f"config.json: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError("config.json: invalid JSON: not UTF-8 text") from None
    validate_config(config)
    check_config(config, bundle)
    return config


def validate_config(config: Any) -> None:
    """Check config against the runtime-spec schema, reporting the most relevant error."""
    if is_valid(config):
        return
    # Invalid (or beyond what the fast check vouches for): let jsonschema find the error.
    from jsonschema.exceptions import best_match

    error = best_match(load_schema_validator().iter_errors(config))
    if error is not None:
        raise ConfigError(f"config.json: {error.json_path}: {error.message}")


# SemVer 2.0.0 (semver.org's own regular expression): the definition. Compiled only for
# a version semver_major's plain reading does not vouch for (compiling it costs more than
# all the rest of the config's checks).
SEMVER_PATTERN = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
_IDENT = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def _numeric(part: str) -> bool:
    return part.isdigit() and (part == "0" or part[0] != "0")


def _plain_semver_major(version: str) -> int | None:
    """The major version of an ASCII SemVer version, read without the regular expression;
    None for anything else (non-ASCII, or not SemVer), which the expression then decides.

    For ASCII the two agree exactly (tests check): three numbers without leading zeros,
    then optionally ``-`` and dot-separated identifiers (numbers without leading zeros, or
    runs of [0-9A-Za-z-] holding a non-digit), then optionally ``+`` and dot-separated
    runs of [0-9A-Za-z-]. ``+`` can only start the build part and ``-`` not occur in the
    core, so splitting at the first of each is the expression's own reading.
    """
    if not version.isascii():
        return None
    rest, plus, build = version.partition("+")
    if plus and not all(p and _IDENT.issuperset(p) for p in build.split(".")):
        return None
    core, dash, pre = rest.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_numeric(n) for n in numbers):
        return None
    if dash and not all(_numeric(p) or (p and not p.isdigit() and _IDENT.issuperset(p))
                        for p in pre.split(".")):
        return None
    return int(numbers[0])


def semver_major(version: str) -> int | None:
    """The major version of a SemVer 2.0.0 version; None if ``version`` is not one."""
    major = _plain_semver_major(version)
    if major is not None:
        return major
    import re

    m = re.fullmatch(SEMVER_PATTERN, version)
    return None if m is None else int(m.group(1))


SUPPORTED_MAJOR = 1
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


def check_config(config: dict, bundle: str) -> None:
    """The checks runc makes that the schema cannot express; config is schema-valid."""
    _check_spec_musts(config)
    if "root" not in config:
        raise ConfigError("config.json: $: 'root' is a required property")
    rootfs = rootfs_path(config, bundle)
    if not os.path.isdir(rootfs):
        what = "is not a directory" if os.path.exists(rootfs) else "does not exist"
        raise ConfigError(f"config.json: $.root.path: rootfs {rootfs} {what}")
    if "process" in config and not config["process"].get("args"):
        raise ConfigError("config.json: $.process.args: args must not be empty")
    seen: set[str] = set()
    for i, ns in enumerate(config.get("linux", {}).get("namespaces", [])):
        ns_type = ns["type"]
        # The schema's enum follows the spec; this follows what pyoci can actually create.
        if ns_type not in NAMESPACES:
            raise ConfigError(
                f"config.json: $.linux.namespaces[{i}].type: unknown namespace type {ns_type!r}"
            )
        if ns_type in seen:
            raise ConfigError(
                f"config.json: $.linux.namespaces[{i}].type: duplicate namespace type {ns_type!r}"
            )
        seen.add(ns_type)


def _check_spec_musts(config: dict) -> None:
    """config.md's MUSTs the schema does not express (a config breaking one is invalid)."""
    version = config.get("ociVersion", "")
    major = semver_major(version) if isinstance(version, str) else None
    if major is None:
        raise ConfigError(f"config.json: $.ociVersion: {version!r} is not a SemVer 2.0.0 "
                          "version")
    if major != SUPPORTED_MAJOR:
        raise ConfigError(f"config.json: $.ociVersion: unsupported version {version} (pyoci "
                          f"supports {SUPPORTED_MAJOR}.x)")
    process = config.get("process")
    if process is not None:
        cwd = process.get("cwd", "")
        if cwd and not cwd.startswith("/"):
            raise ConfigError(f"config.json: $.process.cwd: {cwd!r} is not an absolute path")
        user = process.get("user")
        if user is not None:
            for key in ("uid", "gid"):
                if key not in user:
                    raise ConfigError(f"config.json: $.process.user: {key!r} is a required "
                                      "property")
    for kind in HOOK_KINDS:
        for i, hook in enumerate((config.get("hooks") or {}).get(kind) or []):
            path = hook.get("path", "")
            if not path.startswith("/"):
                raise ConfigError(f"config.json: $.hooks.{kind}[{i}].path: {path!r} is not "
                                  "an absolute path")
    if "" in (config.get("annotations") or {}):
        raise ConfigError("config.json: $.annotations: keys must not be empty")
