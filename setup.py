"""Builds the optional C codec; everything else is in pyproject.toml.

``_intermud3_lpc`` is a top-level module (not inside the package) so an
installed build is found even when tests import ``intermud3`` from a source
checkout. ``optional=True``: without a C compiler or the Python headers the
build warns and the install goes on with the pure-Python codec.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "_intermud3_lpc",
            sources=["ext/module.c", "ext/encode.c", "ext/decode.c"],
            depends=["ext/lpc.h"],
            optional=True,
        ),
    ],
)
