"""A core-only install (``pip install edgeirst``, no extras) inside the developer's environment.

With this folder on PYTHONPATH, Python imports this file at start-up; it hides every optional
dependency (``edgeirst.errors.OPTIONAL_MODULES``: torch, onnx, matplotlib, ...) as if it were not
installed: ``import torch`` raises ModuleNotFoundError, ``importlib.util.find_spec("torch")`` is
None and ``importlib.metadata`` lists no torch distribution. torch cannot be uninstalled where the
tests run, so tests/test_core_install.py runs the CLI this way:

    PYTHONPATH=tests/core_only edgeirst export default --out x.onnx
"""

import re
import sys

from edgeirst.errors import OPTIONAL_MODULES

HIDDEN = frozenset(OPTIONAL_MODULES)


def _hidden_distribution(name: str) -> bool:
    return re.sub(r"[-_.]+", "_", name or "").lower() in HIDDEN | {"torch_pruning", "import_linter"}


class _Hide:
    """Wraps one meta-path finder: hidden modules and distributions are not found."""

    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN or not hasattr(self._finder, "find_spec"):
            return None
        return self._finder.find_spec(name, path, target)

    def find_distributions(self, *args, **kwargs):
        found = getattr(self._finder, "find_distributions", None)
        return [] if found is None else [d for d in found(*args, **kwargs)
                                         if not _hidden_distribution(d.metadata["Name"])]

    def __getattr__(self, name):
        return getattr(self._finder, name)


for _name in [m for m in sys.modules if m.partition(".")[0] in HIDDEN]:  # none at start-up, normally
    del sys.modules[_name]
sys.meta_path[:] = [_Hide(f) for f in sys.meta_path]
