"""Build shim: cffi's ``cffi_modules`` keyword has no pyproject.toml form."""

from setuptools import setup

setup(cffi_modules=["csrc/ffi_build.py:ffibuilder"])
