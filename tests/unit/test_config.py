import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyoci.config import load_config, rootfs_path
from pyoci.errors import ConfigError
from pyoci.spec import default_spec


def _bundle(tmp_path: Path, config: dict | str, rootfs: bool = True) -> str:
    if rootfs:
        (tmp_path / "rootfs").mkdir()
    text = config if isinstance(config, str) else json.dumps(config, indent=2)
    (tmp_path / "config.json").write_text(text)
    return str(tmp_path)


def _error(bundle: str) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(bundle)
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_is_valid(tmp_path: Path, rootless: bool) -> None:
    spec = default_spec(rootless)
    assert load_config(_bundle(tmp_path, spec)) == spec


def test_rootfs_path(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, default_spec())
    config = load_config(bundle)
    assert rootfs_path(config, bundle) == os.path.join(os.path.realpath(bundle), "rootfs")
    assert rootfs_path({"root": {"path": "/abs/root"}}, bundle) == "/abs/root"


def test_missing_bundle(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    assert _error(missing) == f"bundle directory {missing} does not exist"


def test_missing_config(tmp_path: Path) -> None:
    assert _error(str(tmp_path)) == "JSON specification file config.json not found"


def test_malformed_json(tmp_path: Path) -> None:
    message = _error(_bundle(tmp_path, '{\n  "ociVersion": "1.3.0",\n  "process" {}\n}'))
    assert message == "config.json: invalid JSON at line 3 column 13: Expecting ':' delimiter"


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    assert _error(str(tmp_path)) == "config.json: invalid JSON: not UTF-8 text"


def test_args_wrong_type(tmp_path: Path) -> None:
    spec = default_spec()
    spec["process"]["args"] = "sh"
    assert _error(_bundle(tmp_path, spec)) == (
        "config.json: $.process.args: 'sh' is not of type 'array'")


def test_nested_bad_field_is_named(tmp_path: Path) -> None:
    spec = default_spec()
    spec["linux"]["resources"]["memory"] = {"limit": "lots"}
    assert _error(_bundle(tmp_path, spec)) == (
        "config.json: $.linux.resources.memory.limit: 'lots' is not of type 'integer'")


def test_missing_oci_version(tmp_path: Path) -> None:
    spec = default_spec()
    del spec["ociVersion"]
    assert _error(_bundle(tmp_path, spec)) == (
        "config.json: $: 'ociVersion' is a required property")


def test_not_an_object(tmp_path: Path) -> None:
    assert _error(_bundle(tmp_path, "[]")) == "config.json: $: [] is not of type 'object'"


def test_missing_root(tmp_path: Path) -> None:
    spec = default_spec()
    del spec["root"]
    assert _error(_bundle(tmp_path, spec)) == "config.json: $: 'root' is a required property"


def test_missing_rootfs(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, default_spec(), rootfs=False)
    rootfs = os.path.join(os.path.realpath(bundle), "rootfs")
    assert _error(bundle) == f"config.json: $.root.path: rootfs {rootfs} does not exist"


def test_rootfs_not_a_directory(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, default_spec(), rootfs=False)
    (tmp_path / "rootfs").write_text("")
    assert _error(bundle).endswith("rootfs is not a directory")


def test_empty_args(tmp_path: Path) -> None:
    spec = default_spec()
    spec["process"]["args"] = []
    assert _error(_bundle(tmp_path, spec)) == (
        "config.json: $.process.args: args must not be empty")


def test_no_process_is_fine(tmp_path: Path) -> None:
    spec = default_spec()
    del spec["process"]
    load_config(_bundle(tmp_path, spec))


def test_duplicate_namespace(tmp_path: Path) -> None:
    spec = default_spec()
    spec["linux"]["namespaces"].append({"type": "pid"})
    index = len(spec["linux"]["namespaces"]) - 1
    assert _error(_bundle(tmp_path, spec)) == (
        f"config.json: $.linux.namespaces[{index}].type: duplicate namespace type 'pid'")


def test_unknown_namespace(tmp_path: Path) -> None:
    spec = default_spec()
    spec["linux"]["namespaces"][0]["type"] = "bogus"
    message = _error(_bundle(tmp_path, spec))
    assert message.startswith("config.json: $.linux.namespaces[0].type: 'bogus' is not one of")


def test_jsonschema_imported_lazily() -> None:
    code = "import sys, pyoci.config; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
