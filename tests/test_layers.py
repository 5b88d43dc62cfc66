"""The layer order of README "Repository" holds, and the check can fail.

- import-linter's contracts (pyproject.toml, ``[tool.importlinter]``) pass on the package as
  installed, and break on a deliberately added upward import;
- no two modules import each other, directly or through others (no cycles between files);
- an import inside a function is of a heavy optional dependency only (``OPTIONAL``, or an
  edgeirst module whose module-level imports reach one), or a probe of what is installed
  (inside ``try: ... except ImportError``). Everything else is imported at module level, where
  the structure can be seen. The CLI's command modules are loaded by name (``importlib``) from
  ``edgeirst.cli.COMMANDS``: that, not hidden imports, keeps ``edgeirst --help`` light.

import-linter (grimp) reads the files under the package's folder, and ``quantize/``,
``runtime/`` and ``jetson/`` live beside ``edgeirst/`` in the repository (package-dir in
pyproject.toml), also in an editable install; so the checks run on a copy laid out as installed.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

grimp = pytest.importorskip("grimp", reason="import-linter is in the test extra: pip install -e '.[test]'")

REPO = Path(__file__).resolve().parents[1]

# Heavy or optional third-party packages: the train / jetson / plot extras, and onnxruntime (a Jetson
# running TensorRT may not have it). Imported where needed, so that the runtime path, the device and
# `edgeirst --help` need none of them.
OPTIONAL = {"torch", "torchvision", "tensorrt", "pycuda", "cuda", "onnx", "onnxslim", "onnxruntime", "google",
            "torch_pruning", "pycocotools", "matplotlib", "scipy"}


def stage(dest: Path) -> Path:
    """A copy of the package laid out as installed (package-dir mapping applied); returns the
    folder to put on PYTHONPATH."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    ignore = shutil.ignore_patterns("__pycache__", "*.onnx", "*.pt")
    for package, folder in sorted(mapping.items(), key=lambda kv: kv[0].count(".")):
        shutil.copytree(REPO / folder, dest.joinpath(*package.split(".")), ignore=ignore, dirs_exist_ok=True)
    return dest


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code, "--no-cache", str(REPO / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    return stage(tmp_path_factory.mktemp("installed"))


def test_the_layer_contracts_hold(staged):
    r = lint_imports(staged)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


def test_an_upward_import_breaks_the_layer_contracts(tmp_path):
    root = stage(tmp_path)
    (root / "edgeirst" / "runtime" / "upward.py").write_text("from edgeirst.cli import main\n")
    r = lint_imports(root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "edgeirst.runtime.upward -> edgeirst.cli" in r.stdout


def module_graph(root: Path) -> dict[str, set[str]]:
    """edgeirst module -> the edgeirst modules it imports (anywhere in the file), as grimp sees it."""
    code = ("import json, grimp; g = grimp.build_graph('edgeirst', cache_dir=None); print(json.dumps({m: sorted("
            "i for i in g.find_modules_directly_imported_by(m) if i.split('.')[0] == 'edgeirst') for m in g.modules}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                       capture_output=True, text=True, timeout=300, check=True)
    return {m: set(v) for m, v in json.loads(r.stdout).items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_cycle_through_several_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_modules_import_each_other_in_a_cycle(staged):
    graph = module_graph(staged)
    assert "edgeirst.runtime.pipeline" in graph and "edgeirst.jetson.launch" in graph  # the mapped folders
    assert cycles(graph) == []


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = _resolve(module, is_package, node)
    # `from package import submodule` imports the submodule
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def _is_probe(parents: list[ast.AST]) -> bool:
    """Inside a ``try`` that catches ImportError: a check of what is installed, or a fallback."""
    for p in parents:
        if isinstance(p, ast.Try):
            for h in p.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
    return False


def imports_by_place(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, int, str, bool]]]:
    """(module -> what it imports at module level, [(module, line, target, probe) of every import
    inside a function])."""
    files = {_module_name(root, p): p for p in sorted((root / "edgeirst").rglob("*.py"))}
    known = set(files)
    top: dict[str, set[str]] = {}
    inside: list[tuple[str, int, str, bool]] = []
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        top[module] = set()

        def visit(node: ast.AST, parents: list[ast.AST], in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(module, is_package, child, known):
                        if in_function:
                            inside.append((module, child.lineno, target, _is_probe(parents)))
                        elif not any(isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test) for p in parents):
                            top[module].add(target)
                nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, parents + [child], nested)

        visit(ast.parse(path.read_text(), str(path)), [], False)
    return top, inside


def heavy_modules(top: dict[str, set[str]]) -> set[str]:
    """edgeirst modules whose module-level imports reach an OPTIONAL package."""
    heavy = {m for m, targets in top.items() if any(t.split(".")[0] in OPTIONAL for t in targets)}
    changed = True
    while changed:
        changed = False
        for m, targets in top.items():
            if m not in heavy and any(t in heavy or any(t.startswith(h + ".") for h in heavy) for t in targets):
                heavy.add(m)
                changed = True
    return heavy


def hidden_imports(root: Path) -> list[str]:
    top, inside = imports_by_place(root)
    heavy = heavy_modules(top)
    return [f"{module}:{line} imports {target}" for module, line, target, probe in inside
            if not probe and target.split(".")[0] not in OPTIONAL and target not in heavy]


def test_imports_inside_functions_are_only_of_heavy_optional_dependencies(staged):
    assert hidden_imports(staged) == []


def test_a_hidden_import_of_a_light_module_is_reported(tmp_path):
    root = stage(tmp_path)
    (root / "edgeirst" / "hidden.py").write_text(
        "def f():\n    import torch\n    from edgeirst.errors import EdgeirstError\n    return torch, EdgeirstError\n\n\n"
        "def g():\n    try:\n        import tomllib\n    except ImportError:\n        tomllib = None\n    return tomllib\n")
    assert hidden_imports(root) == ["edgeirst.hidden:3 imports edgeirst.errors"]
