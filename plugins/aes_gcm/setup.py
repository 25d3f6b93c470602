"""The plugin's one compiled module, the line-envelope scanner (dmca_aes_gcm/_envscan.c); the rest
is in pyproject.toml. ``optional``: without a C compiler the install still succeeds and the reader
reads envelopes with msgspec (slower, same verdicts)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dmca_aes_gcm._envscan", ["dmca_aes_gcm/_envscan.c"], optional=True, extra_compile_args=["-O2"]
        ),
    ]
)
