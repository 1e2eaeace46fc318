"""Sphinx configuration of the sb3_reinforce docs: the markdown pages (MyST) and an API reference from the docstrings.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (``pip install -e ".[docs]"``).
"""

import os
import sys

# The package from this checkout, installed or not
sys.path.insert(0, os.path.abspath(".."))

import sb3_reinforce

project = "sb3_reinforce"
author = "sb3_reinforce contributors"
copyright = "2026, sb3_reinforce contributors"
version = release = sb3_reinforce.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# docs/results/<env>.md are written by `python -m sb3_reinforce.compare --results docs/results` and start with the
# command that made them, not with a title: they are pages (linked from benchmarks.md), listed in no menu
suppress_warnings = ["toc.no_title"]

# MyST: $...$ and $$...$$ maths as in the lecture; heading anchors for links such as reinforce.md#faults-and-limits
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# The docstrings document every argument with :param:; the signatures show the types
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Members inherited from SB3 are documented there, not here
autodoc_inherit_docstrings = False

html_theme = "sphinx_rtd_theme"
html_title = f"sb3_reinforce {release}"
