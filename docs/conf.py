"""Sphinx configuration for the asock documentation (built by ``tox -e docs``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sphinx import addnodes

# Document the checkout being built, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asock

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx

project = "asock"
author = "the asock developers"
copyright = "2026, the asock developers"
release = asock.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show ``_DEFAULT_TIMEOUT``, not ``<object object at ...>``
autodoc_default_options = {"undoc-members": False}

html_theme = "furo"
html_title = f"asock {release}"


def _qualify_socket_references(app: Sphinx, doctree: nodes.document) -> None:
    """Point a bare ``socket`` in a type hint at the class of its own front.

    Both ``asock`` and ``asock_sync`` define a class named ``socket``, so a
    bare name in a signature would be an ambiguous link. Inside ``asock_sync``
    it means ``asock_sync.socket``; everywhere else (``asock``,
    ``asock.streams``, ...) it means ``asock.socket``.
    """
    for node in doctree.findall(addnodes.pending_xref):
        if node.get("refdomain") != "py" or node.get("reftype") == "mod":
            continue
        if node.get("reftarget") == "socket":
            module = node.get("py:module") or ""
            front = "asock_sync" if module.split(".")[0] == "asock_sync" else "asock"
            node["reftarget"] = f"{front}.socket"


def setup(app: Sphinx) -> None:
    app.connect("doctree-read", _qualify_socket_references)
