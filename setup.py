"""Build shim: cffi's ``cffi_modules`` keyword has no pyproject.toml form, and the ``pyoci``
command is an executable compiled from C (the front door, csrc/pyoci_main.c).

The front door does `state`, `kill`, `start` and `delete` itself and execs the Python CLI
(``python -I -S``, so that `site` never runs) for everything else: the interpreter and the
sys.path it needs (site-packages, and for an editable install the source tree) are baked in
here, at build time, into ``pyoci_frontdoor_config.h``. It is installed as a "script": the
one listed in ``scripts`` is its C source, which :class:`BuildFrontDoor` compiles to
``<build_scripts>/pyoci`` instead of copying it.
"""

import os
import sys
import sysconfig

from setuptools import Distribution, setup

# distutils' build_scripts (setuptools has no subclass of it to import)
build_scripts = Distribution().get_command_class("build_scripts")

HERE = os.path.dirname(os.path.abspath(__file__))
FRONT_DOOR = "csrc/pyoci_main.c"
FRONT_DOOR_SOURCES = [FRONT_DOOR, "csrc/pyoci_json.c"]


def _c_string(text: str) -> str:
    """A C string literal for ``text``."""
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch in '"\\' or not 0x20 <= byte < 0x7f or ch == "?":
            out.append(f"\\{byte:03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class BuildFrontDoor(build_scripts):
    """Compile the front door (gcc -O2, libc only) as the ``pyoci`` script."""

    editable_mode = False  # set by setuptools' editable_wheel

    def run(self) -> None:
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler

        editable = self.editable_mode or any(
            getattr(self.get_finalized_command(c), "inplace", False) for c in ("build_ext",))
        paths = [HERE] if editable else []
        for key in ("purelib", "platlib"):
            lib = sysconfig.get_path(key)
            if lib not in paths:
                paths.append(lib)
        build_temp = os.path.join(self.get_finalized_command("build").build_temp,
                                  "front-door")
        os.makedirs(build_temp, exist_ok=True)
        with open(os.path.join(build_temp, "pyoci_frontdoor_config.h"), "w") as f:
            f.write("/* made by setup.py: where the Python implementation is */\n")
            f.write(f"#define PYOCI_PYTHON {_c_string(sys.executable)}\n")
            f.write(f"#define PYOCI_SYS_PATH {_c_string(repr(paths))}\n")

        compiler = new_compiler()
        customize_compiler(compiler)
        objects = compiler.compile([os.path.join(HERE, s) for s in FRONT_DOOR_SOURCES],
                                   output_dir=build_temp, include_dirs=[build_temp],
                                   extra_preargs=["-O2", "-Wall"])
        os.makedirs(self.build_dir, exist_ok=True)
        target = os.path.join(self.build_dir, "pyoci")
        compiler.link_executable(objects, "pyoci", output_dir=self.build_dir)
        os.chmod(target, 0o755)
        self._outputs = [target]

    def get_outputs(self) -> list:
        return list(getattr(self, "_outputs", []))

    def get_source_files(self) -> list:  # what an sdist must hold
        return [*FRONT_DOOR_SOURCES, "csrc/pyoci_json.h"]


setup(
    cffi_modules=["csrc/ffi_build.py:ffibuilder"],
    scripts=[FRONT_DOOR],
    cmdclass={"build_scripts": BuildFrontDoor},
)
