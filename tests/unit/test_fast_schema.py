"""The generated fast validator (pyoci.schema_fast) against jsonschema's Draft4Validator.

The contract: schema_fast.is_valid must never accept a config jsonschema rejects (config.py
skips jsonschema when it says yes).  For documents json.loads can produce the two must agree
exactly, so every test below compares the answers both ways; for other Python values only the
safe direction is required.
"""

import copy
import decimal
import enum
import json
import math
import os
import pathlib
import subprocess
import sys
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from pyoci import schema_fast
from pyoci.config import load_schema_validator, validate_config
from pyoci.errors import ConfigError
from pyoci.schema_compiler import PLAIN_PATTERNS, SCHEMA_DIR, CompileError, Compiler
from pyoci.schema_compiler import SEARCHER as SCHEMA_SEARCHER
from pyoci.spec import default_spec

VALIDATOR = load_schema_validator()
COMPILER = Compiler()
SCHEMA = COMPILER.documents["config-schema.json"]
# PYOCI_SCHEMA_EXAMPLES=5000 for a deeper run than the suite's default.
EXAMPLES = int(os.environ.get("PYOCI_SCHEMA_EXAMPLES", "100"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)


def jsonschema_accepts(doc: Any) -> bool:
    """jsonschema's verdict; a $ref it cannot resolve (it raises) counts as a rejection."""
    try:
        return VALIDATOR.is_valid(doc)
    except Unresolvable:
        return False


def check(doc: Any) -> bool:
    """Assert the fast and the jsonschema verdicts agree, and that validate_config reports
    exactly what jsonschema alone would; return the verdict."""
    fast = schema_fast.is_valid(doc)
    slow = jsonschema_accepts(doc)
    assert fast == slow, json.dumps(doc, indent=1, default=repr)[:4000]
    if currently_in_test_context():
        event("valid" if slow else "invalid")
    if fast:
        validate_config(doc)  # must not raise
        return True
    try:
        error = best_match(VALIDATOR.iter_errors(doc))
    except Unresolvable as e:
        with pytest.raises(type(e)):
            validate_config(doc)
        return False
    with pytest.raises(ConfigError) as exc:
        validate_config(doc)
    assert str(exc.value) == f"config.json: {error.json_path}: {error.message}"
    return False


# ---- the generated module --------------------------------------------------------------------


def test_generated_module_is_current() -> None:
    """pyoci/schema_fast.py is what the compiler makes of pyoci/schema/*.json today;
    regenerate with `python -m pyoci.schema_compiler`."""
    source = Compiler().compile()
    assert pathlib.Path(schema_fast.__file__).read_text() == source


def test_valid_config_does_not_import_jsonschema(tmp_path: pathlib.Path) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(default_spec()))
    code = (
        "import sys\n"
        "from pyoci.config import load_config\n"
        f"load_config({str(tmp_path)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'referencing', 'jsonschema_specifications')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"


# ---- fixed configs ---------------------------------------------------------------------------


def kitchen_sink() -> dict:
    """A config touching most of the Linux schema, plus the other platforms' sections."""
    spec = default_spec()
    spec["hooks"] = {
        stage: [{"path": "/usr/bin/hook", "args": ["hook", stage], "env": ["A=1"], "timeout": 3}]
        for stage in ("prestart", "createRuntime", "createContainer", "startContainer",
                      "poststart", "poststop")
    }
    spec["annotations"] = {"org.example.key": "value", "a\nb": "c"}
    spec["domainname"] = "example.org"
    spec["process"].update({
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6],
                 "username": "someone"},
        "apparmorProfile": "profile",
        "oomScoreAdj": -500,
        "selinuxLabel": "system_u:system_r:container_t:s0",
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -2, "priority": 1,
                      "flags": ["SCHED_FLAG_RECLAIM"], "runtime": 1, "deadline": 2,
                      "period": 3},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615}],
        "execCPUAffinity": {"initial": "0-3, 7", "final": "1"},
    })
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv",
                           "options": ["rbind", "ro"],
                           "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                           "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]})
    linux = spec["linux"]
    linux.update({
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                     "fileMode": 438, "uid": 0, "gid": 0}],
        "netDevices": {"eth1": {"name": "eth0"}, "dummy0": {}},
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "cgroupsPath": "/pyoci/test",
        "rootfsPropagation": "slave",
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "flags": ["SECCOMP_FILTER_FLAG_LOG"], "architectures": ["SCMP_ARCH_X86_64"],
            "listenerPath": "/run/seccomp.sock", "listenerMetadata": "meta",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 1, "valueTwo": 2,
                                    "op": "SCMP_CMP_MASKED_EQ"}]},
                         {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
        },
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "mountLabel": "system_u:object_r:container_file_t:s0",
        "intelRdt": {"closID": "guaranteed", "schemata": ["L3:0=ff"],
                     "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=20",
                     "enableMonitoring": True},
        "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
        "personality": {"domain": "LINUX32", "flags": []},
        "timeOffsets": {"boottime": {"secs": -5, "nanosecs": 7}, "monotonic": {"secs": 1}},
    })
    linux["namespaces"].append({"type": "cgroup", "path": "/proc/1/ns/cgroup"})
    linux["resources"] = {
        "unified": {"memory.high": "max"},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
        "pids": {"limit": -1},
        "blockIO": {
            "weight": 10, "leafWeight": 10,
            "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 600}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
        },
        "cpu": {"cpus": "0-3", "mems": "0", "period": 100000, "quota": -1, "burst": 0,
                "realtimePeriod": 1, "realtimeRuntime": -1, "shares": 1024, "idle": 1},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 9223372036854772000}],
        "memory": {"limit": 536870912, "reservation": 1, "swap": -1, "kernel": -1,
                   "kernelTCP": -1, "swappiness": 0, "disableOOMKiller": False,
                   "useHierarchy": True, "checkBeforeUpdate": True},
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {}},
    }
    spec["vm"] = {"hypervisor": {"path": "/usr/bin/qemu", "parameters": ["-m", "1G"]},
                  "kernel": {"path": "/boot/vmlinuz", "parameters": ["quiet"],
                             "initrd": "/boot/initrd"},
                  "image": {"path": "/img.qcow2", "format": "qcow2"},
                  "hwConfig": {"deviceTree": "/dt", "vcpus": 2, "memory": 1 << 30,
                               "dtdevs": ["a"], "iomems": [
                                   {"firstGFN": 1, "firstMFN": 2, "nrMFNs": 3}],
                               "irqs": []}}
    return spec


FIXTURES = {
    "default": default_spec(False),
    "rootless": default_spec(True),
    "kitchen-sink": kitchen_sink(),
    "minimal": {"ociVersion": "1.0.0"},
    "no-process": {"ociVersion": "1.2.0", "root": {"path": "rootfs"}},
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_valid(name: str) -> None:
    assert check(copy.deepcopy(FIXTURES[name])) is True


@pytest.mark.parametrize("doc", [
    None, [], "config", 1, {}, {"ociVersion": 1},
    # hand-picked near misses, one per keyword the schemas use
    {"ociVersion": "1", "process": {"args": ["sh"]}},  # required (cwd)
    {"ociVersion": "1", "hostname": None},  # type
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": -1}}},  # minimum
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": 4294967296}}},  # maximum
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": 1.0}}},  # draft 4 integer
    {"ociVersion": "1", "process": {"cwd": "/", "user": {"uid": True}}},  # bool is no int
    {"ociVersion": "1", "process": {"cwd": "/", "oomScoreAdj": math.nan}},
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [
        {"type": "RLIMIT_nofile", "soft": 1, "hard": 1}]}},  # pattern
    {"ociVersion": "1", "process": {"cwd": "/", "rlimits": [
        {"type": "RLIMIT_NOFILE\n", "soft": 1, "hard": 1}]}},  # re.search's $: valid
    {"ociVersion": "1", "linux": {"namespaces": [{"type": "net"}]}},  # enum inside anyOf
    {"ociVersion": "1", "linux": {"rootfsPropagation": "rslave"}},  # enum
    {"ociVersion": "1", "linux": {"seccomp": {"syscalls": [
        {"names": [], "action": "SCMP_ACT_LOG"}]}}},  # minItems
    {"ociVersion": "1", "linux": {"netDevices": {"eth0": {"name": 0}}}},  # additionalProps
    {"ociVersion": "1", "linux": {"sysctl": {"a": 1}}},  # patternProperties
    {"ociVersion": "1", "linux": {"sysctl": {"": 1}}},  # ".{1,}" does not match ""
    {"ociVersion": "1", "linux": {"sysctl": {"\n": 1}}},  # ... nor "\n"
    {"ociVersion": "1", "linux": {"resources": {"blockIO": {"weightDevice": [
        {"major": 8, "weight": 1}]}}}},  # allOf (required from the first branch)
    {"ociVersion": "1", "linux": {"resources": {"blockIO": {"throttleReadBpsDevice": [
        {"major": 8, "minor": 0, "rate": -1}]}}}},  # allOf, second branch
    {"ociVersion": "1", "linux": {"personality": "LINUX"}},  # $ref beside type
    {"ociVersion": "1", "linux": {"intelRdt": {"memBwSchema": "MB:0=1\nMB:1=2"}}},
    {"ociVersion": "1", "vm": {"kernel": {"path": "/k"}, "hwConfig": {"iomems": [
        {"firstMFN": 1}]}}},  # items as a list (required nrMFNs)
    {"ociVersion": "1", "vm": {"kernel": {"path": "/k"}, "hwConfig": {"iomems": [
        {"firstMFN": 1, "nrMFNs": 1}, "anything goes past the tuple"]}}},
    {"ociVersion": "1", "vm": {"kernel": {"path": "/k"}, "hwConfig": {"irqs": [1]}}},
    {"ociVersion": "1", "windows": {"layerFolders": []}},  # minItems
])
def test_near_misses(doc: Any) -> None:
    check(doc)


def test_irqs_reference_resolves() -> None:
    """The spec's defs.json says "#definitions/uint32" (no slash); our copy fixes it, so
    vm.hwConfig.irqs is checked like any other uint32 array instead of crashing jsonschema."""
    doc = {"ociVersion": "1", "vm": {"kernel": {"path": "/k"}, "hwConfig": {"irqs": [1]}}}
    assert check(doc) is True
    doc["vm"]["hwConfig"]["irqs"] = [-1]
    assert check(doc) is False


class Small(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize("value", [
    OrderedDict(default_spec()),
    {**default_spec(), "process": {**default_spec()["process"], "args": ("sh",)}},
    {**default_spec(), "process": {**default_spec()["process"], "oomScoreAdj": Small.ONE}},
    {**default_spec(), "process": {**default_spec()["process"],
                                   "oomScoreAdj": decimal.Decimal(1)}},
])
def test_non_json_values_never_wrongly_accepted(value: Any) -> None:
    """Beyond JSON the fast path may say no where jsonschema says yes (it then falls back),
    never the other way round."""
    if schema_fast.is_valid(value):
        assert jsonschema_accepts(value)


# ---- documents generated from the schema, with mutations -------------------------------------

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 1.0, 2**31, 2**32, 2**63, 2**64, -(2**63) - 1, "", "\n"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)


def _resolve(schema: dict, document: str) -> tuple[dict | None, str]:
    if "$ref" in schema:  # draft 4: siblings of $ref are ignored
        followed = COMPILER.follow(schema["$ref"], document)
        if isinstance(followed, str):
            return None, document
        document, _, schema = followed
    return schema, document


def _near_misses(schema: dict) -> st.SearchStrategy:
    """Values that break (or just miss breaking) this schema's own constraints."""
    options = [JSON_VALUES]
    if "minimum" in schema or "maximum" in schema:
        bounds = [schema.get("minimum"), schema.get("maximum")]
        values = []
        for bound in filter(lambda b: b is not None, bounds):
            values += [bound - 1, bound, bound + 1, float(bound), bool(bound & 1)]
        options.append(st.sampled_from(values))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]).flatmap(lambda e: st.sampled_from(
            [e.lower(), e.upper(), e + "x", " " + e, e + "\n", e[:-1]])))
    if "pattern" in schema:
        options.append(st.tuples(st.from_regex(schema["pattern"]),
                                 st.sampled_from(["", "\n", "x", "_", "0", " ", "\n\n"]),
                                 st.booleans()).map(
            lambda t: t[1] + t[0] if t[2] else t[0] + t[1]))
    return st.one_of(options)


@st.composite
def instances(draw: st.DrawFn, schema: dict, document: str, rate: float) -> Any:
    """A value for schema, valid unless a mutation (chance `rate` at each node) breaks it."""
    schema, document = _resolve(schema, document)
    if schema is None:  # an unresolvable $ref: jsonschema raises on any value
        return draw(JSON_VALUES)
    if rate and draw(st.integers(0, 999)) < rate * 1000:
        return draw(_near_misses(schema))
    if "anyOf" in schema:
        return draw(instances(draw(st.sampled_from(schema["anyOf"])), document, rate))
    if "allOf" in schema:  # the spec's allOfs are all object schemas: merge them
        merged: dict = {"type": "object", "properties": {}, "required": []}
        for sub in schema["allOf"]:
            sub, _ = _resolve(sub, document)
            merged["properties"].update(sub.get("properties", {}))
            merged["required"] += sub.get("required", [])
        schema = merged
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    kind = schema.get("type")
    if kind == "object":
        return draw(_objects(schema, document, rate))
    if kind == "array":
        items = schema.get("items", {})
        if isinstance(items, list):
            # element i against items[i] as far as both go; beyond, anything
            head = [draw(instances(s, document, rate)) for s in items]
            size = draw(st.integers(0, len(head) + 1))
            return head[:size] + ([draw(JSON_VALUES)] if size > len(head) else [])
        if rate == 0 and _resolve(items, document)[0] is None:
            return []
        size = draw(st.integers(schema.get("minItems", 0), schema.get("minItems", 0) + 2))
        return [draw(instances(items, document, rate)) for _ in range(size)]
    if kind == "string":
        if "pattern" in schema:
            return draw(st.from_regex(schema["pattern"]))
        return draw(st.text(max_size=8))
    if kind == "integer":
        return draw(st.integers(schema.get("minimum"), schema.get("maximum")))
    if kind == "boolean":
        return draw(st.booleans())
    return draw(JSON_VALUES)


@st.composite
def _objects(draw: st.DrawFn, schema: dict, document: str, rate: float) -> dict:
    required = schema.get("required", [])
    out = {}
    for name, sub in schema.get("properties", {}).items():
        if name in required or draw(st.integers(0, 2)) == 0:
            out[name] = draw(instances(sub, document, rate))
    for pattern, sub in schema.get("patternProperties", {}).items():
        for key in draw(st.lists(st.from_regex(pattern), max_size=2)):
            out[key] = draw(instances(sub, document, rate))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in draw(st.lists(st.text(max_size=6), max_size=2)):
            out[key] = draw(instances(extra, document, rate))
    if rate and draw(st.integers(0, 999)) < rate * 1000:  # an unknown or a missing key
        if required and draw(st.booleans()):
            out.pop(draw(st.sampled_from(required)), None)
        else:
            out[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return out


RATES = st.sampled_from([0.0, 0.005, 0.02, 0.1, 0.3])


@SETTINGS
@given(st.data())
def test_generated_configs(data: st.DataObject) -> None:
    rate = data.draw(RATES, label="rate")
    doc = data.draw(instances(SCHEMA, "config-schema.json", rate), label="config")
    verdict = check(doc)
    if rate == 0:
        assert verdict, "the generator's unmutated documents are valid"


@pytest.mark.parametrize("section", ["linux", "solaris", "windows", "vm", "zos", "freebsd"])
@SETTINGS
@given(data=st.data())
def test_generated_platform_sections(section: str, data: st.DataObject) -> None:
    rate = data.draw(RATES, label="rate")
    value = data.draw(instances(SCHEMA["properties"][section], "config-schema.json", rate))
    check({"ociVersion": "1.0.0", section: value})


# ---- mutations of real configs ---------------------------------------------------------------


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def _mutations(value: Any) -> st.SearchStrategy:
    options = [JSON_VALUES, st.just([value]), st.just({"x": value})]
    if isinstance(value, str):
        options.append(st.sampled_from([value + "\n", value.lower(), value.upper(), value[1:],
                                        value + "_X", ""]))
    if isinstance(value, bool):
        options.append(st.just(int(value)))
    elif isinstance(value, int):
        options.append(st.sampled_from([value + 1, value - 1, -value - 1, float(value),
                                        str(value), 2**32, 2**64, -(2**63) - 1]))
    return st.one_of(options)


@SETTINGS
@given(st.sampled_from(sorted(FIXTURES)), st.data())
def test_mutated_fixtures(name: str, data: st.DataObject) -> None:
    doc = copy.deepcopy(FIXTURES[name])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(doc)), label="path")
        if not path:
            doc = data.draw(_mutations(doc))
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "replace":
            parent[key] = data.draw(_mutations(parent[key]), label="value")
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8), label="key")] = data.draw(JSON_VALUES)
        else:
            parent.insert(key, data.draw(JSON_VALUES | st.just(parent[key])))
    check(doc)


# ---- the compiler itself, on schemas the spec does not (yet) use -----------------------------


def _compile(tmp_path: pathlib.Path, schema: dict):
    (tmp_path / "root.json").write_text(json.dumps(schema))
    namespace: dict = {}
    exec(compile(Compiler(tmp_path, "root.json").compile(), "generated", "exec"), namespace)
    return namespace["is_valid"]


@pytest.mark.parametrize("schema", [
    {"uniqueItems": True},
    {"minimum": 1},  # no type beside it
    {"type": "object", "properties": {"a": {"id": "#a"}}},
    {"enum": [1, "a"]},
    {"type": "decimal"},
    {"dependencies": {"a": ["b"]}},
])
def test_compiler_refuses_what_it_does_not_implement(tmp_path: pathlib.Path,
                                                      schema: dict) -> None:
    with pytest.raises(CompileError):
        _compile(tmp_path, schema)


EXTRA_SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    {"type": "object", "patternProperties": {"^x": {"type": "string"}, "y$": {}},
     "additionalProperties": False},
    {"type": "object", "additionalProperties": False},
    {"properties": {"a": {"type": ["string", "null"]}}, "required": ["a"],
     "minProperties": 1, "maxProperties": 2},
    {"type": "array", "items": [{"type": "integer"}, {"type": "string"}],
     "additionalItems": False, "maxItems": 3},
    {"type": "array", "items": [{"type": "integer"}], "additionalItems": {"type": "boolean"}},
    {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0, "exclusiveMinimum": True}]},
    {"not": {"type": "string", "minLength": 2, "maxLength": 3}},
    {"anyOf": [{"type": "string", "pattern": "^a"}, {"type": "array", "minItems": 2}]},
    {"type": "number", "maximum": 1.5, "exclusiveMaximum": True},
    {"allOf": [{"$ref": "#/definitions/d"}, {"required": ["b"]}],
     "definitions": {"d": {"type": "object", "properties": {"b": {"enum": ["x", "y"]}}}}},
]


@pytest.mark.parametrize("schema", EXTRA_SCHEMAS)
def test_compiler_matches_jsonschema_on_other_keywords(tmp_path: pathlib.Path,
                                                       schema: dict) -> None:
    import jsonschema

    is_valid = _compile(tmp_path, schema)
    validator = jsonschema.Draft4Validator(schema)

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None)
    @given(JSON_VALUES)
    def agree(value: Any) -> None:
        assert is_valid(value) == validator.is_valid(value), value

    agree()


def test_schema_dir_is_the_packaged_one() -> None:
    assert SCHEMA_DIR == pathlib.Path(schema_fast.__file__).parent / "schema"


# ---- patterns answered without re ------------------------------------------------------------

def _plain(pattern: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(SCHEMA_SEARCHER, "searcher", "exec"), namespace)
    return eval(PLAIN_PATTERNS[pattern], namespace)


@pytest.mark.parametrize("pattern", sorted(PLAIN_PATTERNS))
@SETTINGS
@given(data=st.data())
def test_plain_patterns_answer_as_re(pattern: str, data: st.DataObject) -> None:
    """Each pattern schema_fast answers without re gets re.search's answer, for any string
    (made of the pattern's own characters, newlines, and others)."""
    import re

    plain = _plain(pattern)
    alphabet = st.sampled_from("RLIMIT_AZNOFILE09, -cbupx\n\r\t\xe9")
    text = data.draw(st.one_of(st.text(alphabet, max_size=12), st.text(max_size=8),
                               st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_NOFILE\n",
                                                "RLIMIT_\n", "0-3,5", "0-3\n\n", "c\n",
                                                "cc", "\n", "", "\n\n", "a\nb"])))
    assert bool(plain(text)) == bool(re.search(pattern, text)), repr(text)


def test_fast_schema_imports_no_re() -> None:
    """Validating an everyday config (rlimits, annotations, devices) needs no re."""
    spec = default_spec()
    spec["annotations"] = {"a": "b"}
    spec["linux"]["devices"] = [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}]
    spec["linux"]["resources"] = {"cpu": {"cpus": "0-1", "mems": "0"}}
    code = ("import sys; from pyoci import schema_fast\n"
            f"assert schema_fast.is_valid({spec!r})\n"
            "print('re' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c",
                          f"import sys; sys.path[:0] = {sys.path!r}\n" + code],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
