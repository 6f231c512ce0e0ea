"""Text files read line by line for the readers: UTF-8 (a BOM allowed on line 1), LF or CRLF,
each line with its number, so that every error can start with ``"<path>:<line>: "``."""
from __future__ import annotations

import os
from typing import Generator, Optional, Union

__all__ = ["numbered_lines", "content_lines"]

PathLike = Union[str, "os.PathLike[str]"]


def numbered_lines(path: PathLike) -> Generator[tuple[int, str], None, None]:
    """``(line number from 1, text without its line ending)`` for each line of the file, streamed.

    Raises:
        ValueError: ``"<path>:<line>: not valid UTF-8 (<reason> at byte <offset>)"``.
    """
    name = os.fspath(path)
    # Binary mode so that a bad byte can be reported with its line number.
    with open(path, "rb") as file:
        for lineno, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{name}:{lineno}: not valid UTF-8 ({error.reason} at byte "
                                 f"{error.start})") from None
            yield lineno, line.rstrip("\r\n")


def content_lines(path: PathLike, expected: str,
                  blank_chars: Optional[str] = None) -> Generator[tuple[int, str], None, None]:
    """The lines of :func:`numbered_lines` that are not blank (``line.strip(blank_chars)`` is
    empty), for files where blank lines may only end the file.

    Raises:
        ValueError: :func:`numbered_lines`'s, or ``"<path>:<line>: empty line; expected
            <expected>"`` at the first blank line that another line follows.
    """
    first_blank: Optional[int] = None
    for lineno, line in numbered_lines(path):
        if not line.strip(blank_chars):
            first_blank = first_blank or lineno
            continue
        if first_blank is not None:
            raise ValueError(f"{os.fspath(path)}:{first_blank}: empty line; expected {expected}")
        yield lineno, line
