"""Minimal setup.py: cffi's build hook needs ``cffi_modules``.  cffi builds
the extension for CPython's stable ABI (``_kmallocwd.abi3.so``), so the
wheel is tagged abi3 too."""

from setuptools import setup

setup(cffi_modules=["kmallocwd/_build.py:ffibuilder"],
      options={"bdist_wheel": {"py_limited_api": "cp311"}})
