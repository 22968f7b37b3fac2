"""Minimal setup.py: cffi's build hook needs ``cffi_modules``."""

from setuptools import setup

setup(cffi_modules=["kmallocwd/_build.py:ffibuilder"])
