"""The small data sets that ship with the package (package data, found with importlib.resources,
so they work from a wheel as from a checkout):

* ``sentiment/`` -- a synthetic treebank in the Stanford Sentiment Treebank format
  (``train.txt``, ``dev.txt``, ``test.txt``), the default ``--data`` of ``train``;
* ``sick_sample/`` -- synthetic sentence pairs in the pre-parsed SICK form, the default
  ``--data`` of ``sick-train``.

Both were written by the generators in the repository's ``data/`` folder (see its README).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["sentiment_dir", "sick_sample_dir"]


def _bundled(name: str) -> Path:
    # Installed as plain files (a wheel, an editable install, a checkout): a real directory.
    return Path(str(resources.files(__name__).joinpath(name)))


def sentiment_dir() -> Path:
    """The bundled sentiment treebank's directory (``train.txt``, ``dev.txt``, ``test.txt``)."""
    return _bundled("sentiment")


def sick_sample_dir() -> Path:
    """The bundled SICK sample's directory (``train/``, ``dev/``, ``test/``)."""
    return _bundled("sick_sample")
