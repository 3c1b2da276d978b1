"""Read methods: each module of this package defines ``METHODS``, a list of :class:`Method` rows.

Adding a method is adding one module (or one row to an existing module's list); the registry, the CLI and
the asv grid pick it up from here. A module outside the package (a lab's own reader, a test's broken one)
is added with :func:`load_methods`; a run's state file names such files so every benchmark process loads them.

The registry is built on first use (``METHODS``, :func:`get_method`), not on import: importing one method's
module (``nwb_cloud.access.remfile_http``) imports that module's libraries only, so the first use of a method
in a fresh process (:mod:`nwb_cloud.suite.first_use`) pays for its own imports, not for every reader's, and
``import nwb_cloud.access.nwb_index`` (the light ``[index]`` install) imports no other reader's library.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from nwb_cloud.access.base import (
    AccessError,
    Method,
    MethodUnavailable,
    NotNwbFile,
    Opened,
    UnknownMethod,
    Unsupported,
    translate_errors,
)


def _discover() -> dict[str, Method]:
    methods: dict[str, Method] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for method in getattr(module, "METHODS", []):
            if method.name in methods:
                raise RuntimeError(f"read method {method.name!r} is defined twice")
            methods[method.name] = method
            _SOURCES[method.name] = module.__name__
    return methods


_SOURCES: dict[str, str] = {}  # method name -> the module (or file) whose METHODS list holds it


def method_source(name: str) -> str:
    """The importable module (``nwb_cloud.access.remfile_http``) or the file (``/x/mine.py``) defining ``name``."""
    get_method(name)
    return _SOURCES[name]


_registry: dict[str, Method] | None = None


def _methods() -> dict[str, Method]:
    global _registry
    if _registry is None:
        _registry = _discover()
    return _registry


def __getattr__(name: str):
    if name == "METHODS":  # the registry, built on first use
        return _methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_method(name: str) -> Method:
    methods = _methods()
    try:
        return methods[name]
    except KeyError:
        raise UnknownMethod(f"unknown read method {name!r}; known: {', '.join(methods)}") from None


def load_methods(path: str | Path) -> list[str]:
    """Register the ``METHODS`` rows of the Python file ``path``; returns their names (a file loaded before is
    not loaded again; a name already taken by another row raises)."""
    path = Path(path).resolve()
    name = f"nwb_cloud_methods_{abs(hash(str(path)))}"
    module = _LOADED.get(path)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise AccessError(f"cannot load read methods from {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows = list(getattr(module, "METHODS", []))
        taken = [row.name for row in rows if row.name in _methods()]
        if taken:
            raise AccessError(f"{path} defines read method(s) {', '.join(taken)} already in the registry")
        _methods().update({row.name: row for row in rows})
        _SOURCES.update({row.name: str(path) for row in rows})
        _LOADED[path] = module
    return [row.name for row in getattr(module, "METHODS", [])]


_LOADED: dict[Path, object] = {}


def open_nwb(store, key: str, method: str) -> Opened:
    """Open the NWB file at ``key`` of ``store`` with the named read method."""
    return get_method(method)(store, key)


__all__ = [
    "METHODS", "AccessError", "Method", "MethodUnavailable", "NotNwbFile", "Opened", "UnknownMethod", "Unsupported",
    "get_method", "load_methods", "method_source", "open_nwb", "translate_errors",
]  # fmt: skip
