"""Sphinx configuration of the treelstm documentation (``make docs``).

Pages are MyST Markdown (``*.md``, like the README) and reStructuredText (the API reference,
``api/*.rst``); the API reference is generated from the docstrings (autodoc + napoleon, Google
style). Every Python block of the pages runs in ``tests/test_docs.py``.
"""
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the checkout's treelstm, installed or not
sys.path.insert(0, str(DOCS / "_ext"))

import treelstm  # noqa: E402

project = "treelstm"
author = "the treelstm authors"
copyright = "the treelstm authors, MIT License"
release = version = treelstm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "cli_help",  # docs/_ext/cli_help.py: ``.. cli-help:: train`` = ``python -m treelstm train --help``
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
# Unresolved cross-references are not errors: docstrings name private modules and torch types
# that are not documented here (run with -n to list them).
nitpicky = False

# MyST: $...$ math, ::: fences, and anchors for the headings (for links between pages).
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# Google-style docstrings (Args / Returns / Raises / Attributes); torch's own "Inputs: ..." and
# "Outputs: ..." sections are rewritten before napoleon runs (below).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "exclude-members": "extra_repr"}
# A method without a docstring of its own is left out rather than shown with its base class's
# (``nn.Module.forward``'s "Define the computation performed at every call" would be wrong here).
autodoc_inherit_docstrings = False

html_theme = "alabaster"
html_title = f"treelstm {release}"
html_theme_options = {
    "description": "Child-Sum and N-ary Tree-LSTMs for PyTorch, with nn.LSTM's conventions",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}


# --------------------------------------------------------------------------- docstring styles
# torch's "Inputs: input, (h_0, c_0)" / "Outputs: ..." line (one line) followed by an indented
# list, which napoleon does not read, made into what it does read (before it runs): a bold
# paragraph and the list.
_TORCH_SECTION = re.compile(r"^(\s*)(Inputs|Outputs):\s*(\S.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the indented block that starts at ``lines[start]``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def rewrite_sections(lines: list[str]) -> list[str]:
    out: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        torch_section = _TORCH_SECTION.match(line)
        if torch_section:
            pad, name, header = torch_section.groups()
            k += 1
            end = _block_end(lines, k, len(pad))
            body = lines[k:end]
            shift = min((_indent(b) for b in body if b.strip()), default=len(pad)) - len(pad)
            out += [f"{pad}**{name}:** {header}", ""]
            out += [b[shift:] if b.strip() else "" for b in body] + [""]
            k = end
        else:
            out.append(line)
            k += 1
    return out


def _process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = rewrite_sections(lines)


def _skip_member(app, what, name, obj, skip, options):
    # NamedTuple fields ("Alias for field number 0"): their docstring's Attributes say more.
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
        return True
    return None


def _public_bases(app, name, obj, options, bases: list) -> None:
    # "Bases: _TreeLSTMCellBase" says nothing to a reader: show the first public ancestors.
    public: list = []
    for base in bases:
        while base.__name__.startswith("_") and base.__bases__ != (object,):
            base = base.__bases__[0]
        if base not in public:
            public.append(base)
    bases[:] = public


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _process_docstring, priority=100)  # before napoleon
    app.connect("autodoc-skip-member", _skip_member)
