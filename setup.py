"""Build hook for the one C extension; everything else is in pyproject.toml.

``protocol._ed25519_batch`` verifies a batch of Ed25519 signatures with OpenSSL while the GIL
is released (issue 4). It needs a C compiler, the Python headers and OpenSSL's (Debian:
``gcc python3-dev libssl-dev``, installed by ``scripts/system-deps.sh``). The build is
optional: without them the package installs and ``protocol.ed25519`` verifies one signature
at a time with ``cryptography`` (slower ingest, same answers).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "protocol._ed25519_batch",
            ["protocol/_ed25519_batch.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
