"""The one compiled module, SIDRCE's line scanner (sidrce/_linescan.c); everything else is in
pyproject.toml. ``optional``: where no C compiler is found the install still succeeds, and the
collector reads with msgspec alone (slower, same reports)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("sidrce._linescan", ["sidrce/_linescan.c"], optional=True, extra_compile_args=["-O2"]),
    ]
)
