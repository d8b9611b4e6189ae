"""A digest of the library code a job runs, blind to comments and docstrings.

Snakemake reruns a job when its script changes, but a script here is a few
lines that call the library: an edit to `viclip/train/loop.py` would rerun
nothing. The workflow therefore passes each rule this digest as a param.

What a job runs is approximated by its script's import closure inside the
package: every `viclip` module the script imports, anywhere in its body
(lazy imports in functions too), then theirs, with the packages above each.
An edit to a module outside the closure reruns nothing; an edit inside it
reruns the jobs of that rule, even where the changed function is not called:
the safe side.

Each module counts by its syntax tree without docstrings, so editing a comment
or a docstring, or reformatting, changes nothing, while any change to code
does. The tree's text depends on the Python minor version: a new Python reruns
every job once.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "viclip"


# Caches keyed by a file's text: a workflow load reads each module once per rule, and an edited file
# (same path, new text) is parsed again.
@cache
def _parse(source: str) -> ast.Module:
    return ast.parse(source)


@cache
def _module_digest(source: str) -> bytes:
    tree = ast.parse(source)  # its own copy: the cached tree stays whole
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).digest()


def module_path(root: Path, name: str) -> Path | None:
    """The file of package module `name` under `root`, or None when it is not one."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(path: Path, name: str) -> frozenset[str]:
    """Package modules that module `name` (file `path`) imports, as candidates (not all are modules)."""
    return _imported_by(path.read_text(), name, path.name == "__init__.py")


@cache
def _imported_by(source: str, name: str, is_package: bool) -> frozenset[str]:
    found = set()
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(_parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return frozenset(m for m in found if m == PACKAGE or m.startswith(PACKAGE + "."))


def closure(root: Path, script: Path) -> list[str]:
    """Names of the package modules `script` runs, with the packages above each, sorted."""
    seen: set[str] = set()
    todo = list(_imported(script, "__main__"))
    while todo:
        name = todo.pop()
        parts = name.split(".")
        todo += [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p not in seen]  # a.b.c runs a, a.b
        if name in seen:
            continue
        path = module_path(root, name)
        if path is None:  # an attribute imported from a module, not a module
            continue
        seen.add(name)
        todo += _imported(path, name) - seen
    return sorted(seen)


def code_digest(root: str | Path, script: str | Path) -> str:
    """sha256 (16 hex digits) of the code of every package module `script` runs."""
    root, script = Path(root), Path(script)
    h = hashlib.sha256()
    for name in closure(root, script):
        h.update(name.encode() + b"\0" + _module_digest(module_path(root, name).read_text()))
    return h.hexdigest()[:16]
