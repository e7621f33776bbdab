"""Build the optional compiled twins of asock_core.kernel_calls and async_calls.

The extension is optional: without a C compiler (or if it fails to build)
the install goes on and asock uses its pure-Python code. Setting
ASOCK_PURE_PYTHON=1 skips the build, and also makes an installed extension
unused at run time.
"""

import os

from setuptools import Extension, setup

extensions = []
if not os.environ.get("ASOCK_PURE_PYTHON"):
    extensions.append(
        Extension(
            "asock_core._speedups",
            ["asock_core/_speedups.c", "asock_core/_async_calls.c", "asock_core/_trap_wait.c"],
            depends=["asock_core/_socket_state.h"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
