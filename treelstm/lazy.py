"""Lazy package attributes (PEP 562): a package lists ``name -> module`` and imports a module
only when one of its names is first used, so ``import treelstm`` stays cheap."""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any],
                 submodules: bool = False) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``: ``exports`` maps each
    public name to the (relative) module defining it; a name is imported on first use and kept
    in ``namespace`` (the package's ``globals()``), so the next lookup is a plain one. With
    ``submodules``, any other public name that is a submodule (``treelstm.data``) is imported
    too."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            if submodules and not name.startswith("_") and \
                    importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f".{name}", package)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
