"""The import finder of the ``cronsync-run`` bundle: the shim's start-up modules served
from one file instead of one search, open and read each.

Not imported as a module on the shim's path: ``cronsync install-shim`` stores this file's
compiled code in the bundle (see :mod:`cronsync.host.shimbundle`) and the launcher runs
it, then calls :func:`install` with the bundle's entries. It uses only what the
interpreter has loaded at start-up (``sys``, ``posix``, ``_frozen_importlib``).

An entry is ``name: (origin, is_package, size, mtime_ns, code)``: the source file the
code was compiled from, and its size and modification time then. :func:`install` checks
every source file against them first, as Python checks a ``.pyc`` against its source:
when one changed (cronsync upgraded without ``cronsync install-shim`` again) or is gone,
nothing is installed and the shim imports its modules the usual way, from the sources.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
    from typing import Any, Optional

    Entry = tuple[str, bool, int, int, CodeType]


def install(entries: "dict[str, Entry]") -> bool:
    """Put a finder for ``entries`` first on ``sys.meta_path`` when every entry's source
    file is as it was when the bundle was made.

    Returns:
        True when installed; False when a source changed or is missing (nothing done).
    """
    from posix import stat

    for origin, _package, size, mtime_ns, _code in entries.values():
        try:
            found = stat(origin)
        except OSError:
            return False
        if found.st_size != size or found.st_mtime_ns != mtime_ns:
            return False
    sys.meta_path.insert(0, BundleFinder(entries))
    return True


class BundleFinder:
    """Finds and loads the bundle's modules (a meta path finder and its loader)."""

    def __init__(self, entries: "dict[str, Entry]") -> None:
        self.entries = entries

    def find_spec(self, name: str, path: "Any" = None, target: "Any" = None) -> "Optional[Any]":
        """Return the module spec of ``name`` when the bundle holds it, else None (the
        usual finders look for it)."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        from _frozen_importlib import ModuleSpec

        origin, package = entry[0], entry[1]
        loader: Any = self  # a Loader by duck typing (importlib.abc costs an import)
        spec = ModuleSpec(name, loader, origin=origin, is_package=package)
        spec.has_location = True  # module.__file__ = origin
        if package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        return spec

    def create_module(self, spec: "Any") -> None:
        """The default module object."""
        return None

    def exec_module(self, module: "ModuleType") -> None:
        """Run the module's bundled code in its namespace."""
        exec(self.entries[module.__name__][4], module.__dict__)  # noqa: S102 - cronsync's own code
