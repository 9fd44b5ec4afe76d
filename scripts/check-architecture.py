#!/usr/bin/env python3
"""Checks the rules of docs/architecture.md, so they cannot silently break (stdlib only).

  python3 scripts/check-architecture.py             # check the repository; exit 1 on a broken rule
  python3 scripts/check-architecture.py --self-test # show each check fails on a fixture that
                                                    # breaks its rule (and passes a clean one)

Rules (each failure names the rule and the files or crates involved):
  1. engines (tether-rooms, tether-sync, tether-relay, tether-exec, tether-js) never depend on
     tether-server or tether-py, directly or through another workspace crate (`cargo metadata`);
  2. tether-patch depends on no other tether crate;
  3. engines never await or own sockets: no async runtime, HTTP or socket crate among their
     normal dependencies (transitively, from the resolved `cargo metadata` graph), and no
     `async fn`, `.await` or `std::net` in their sources;
  4. python/tether reaches Rust only through `tether._native` (the one extension module maturin
     builds; `tether.js` uses its `js` submodule): no other compiled module, ctypes or cffi;
  5. web/ has no build step: no package.json or bundler config, `tsc` only type-checks
     (`noEmit`), and every import is a relative path to a file that exists;
  6. docs/architecture.md's Mermaid crate graph is the one in the Cargo.toml files;
  7. no file-level import circle among the Rust files of each crates/*/src (edges: `mod x;`,
     `crate::…`, `super::…`, `self::…` paths) or among the modules of python/tether (every
     import statement, wherever it is, but not under `if TYPE_CHECKING:`); a circle is printed
     file by file.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

ENGINES = ("tether-rooms", "tether-sync", "tether-relay", "tether-exec", "tether-js")
ADAPTERS = ("tether-server", "tether-py")
# Crates that mean "this code awaits or owns sockets" (prefix match on the crate name).
ASYNC_OR_IO_CRATES = (
    "tokio",
    "async-",
    "futures",
    "mio",
    "axum",
    "hyper",
    "tower",
    "tungstenite",
    "smol",
    "socket2",
    "reqwest",
    "rustls",
)
ASYNC_OR_IO_SOURCE = re.compile(r"\basync\s+(fn|move\b|\{)|\.await\b|\bstd::net\b")

# A circle is allowed while all its files are in one of these sets (none today; an entry needs a
# comment saying why the circle cannot be broken).
ALLOWED_CIRCLES: list[frozenset[str]] = []


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def fail(self, rule: str, message: str) -> None:
        self.failures.append(f"[{rule}] {message}")


# --- cargo metadata -------------------------------------------------------------------------


def cargo_metadata(root: Path) -> dict:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def check_crate_graph(meta: dict, report: Report) -> None:
    """Rules 1-3 (the dependency part) on `cargo metadata` output."""
    members = set(meta["workspace_members"])
    packages = {p["id"]: p for p in meta["packages"]}
    by_name = {packages[i]["name"]: packages[i] for i in members}
    workspace_names = set(by_name)

    def direct(name: str) -> list[tuple[str, str]]:
        return [(d["name"], d.get("kind") or "normal") for d in by_name[name]["dependencies"]]

    def workspace_closure(name: str) -> dict[str, list[str]]:
        """Workspace crates `name` depends on (any kind at the first step, normal and build
        after it), each with the path that reaches it."""
        paths: dict[str, list[str]] = {}
        todo = [(name, [name])]
        while todo:
            current, path = todo.pop()
            for dep, kind in direct(current):
                if dep not in workspace_names or dep in paths:
                    continue
                if current != name and kind == "dev":
                    continue
                paths[dep] = [*path, dep]
                todo.append((dep, paths[dep]))
        return paths

    for engine in ENGINES:
        if engine not in by_name:
            report.fail("engines", f"{engine} is not a workspace member any more")
            continue
        for dep, path in workspace_closure(engine).items():
            if dep in ADAPTERS:
                report.fail("engines", f"{engine} depends on {dep}: {' -> '.join(path)}")
    if "tether-patch" in by_name:
        for dep, kind in direct("tether-patch"):
            if dep.startswith("tether"):
                report.fail("tether-patch", f"tether-patch depends on {dep} ({kind})")

    # Rule 3: the resolved graph (normal and build edges) below each engine.
    resolve = meta.get("resolve") or {}
    nodes = {n["id"]: n for n in resolve.get("nodes", [])}
    ids = {packages[i]["name"]: i for i in members}
    for engine in ENGINES:
        start = ids.get(engine)
        if start is None or start not in nodes:
            continue
        seen = {start: [engine]}
        todo = [start]
        while todo:
            current = todo.pop()
            for dep in nodes[current].get("deps", []):
                kinds = {k.get("kind") for k in dep.get("dep_kinds", [])}
                if kinds and kinds <= {"dev"}:
                    continue
                if dep["pkg"] in seen:
                    continue
                seen[dep["pkg"]] = [*seen[current], packages[dep["pkg"]]["name"]]
                todo.append(dep["pkg"])
        for pkg_id, path in seen.items():
            name = packages[pkg_id]["name"]
            if any(name == p.rstrip("-") or name.startswith(p) for p in ASYNC_OR_IO_CRATES):
                report.fail(
                    "engines-sans-io",
                    f"{engine} depends on {name}, an async or socket crate: {' -> '.join(path)}",
                )


def check_engine_sources(root: Path, report: Report) -> None:
    """Rule 3 (the source part): engines neither await nor open sockets."""
    for engine in ENGINES:
        for path in sorted((root / "crates" / engine / "src").rglob("*.rs")):
            code = strip_rust(path.read_text())
            for match in ASYNC_OR_IO_SOURCE.finditer(code):
                line = code.count("\n", 0, match.start()) + 1
                report.fail(
                    "engines-sans-io",
                    f"{path.relative_to(root)}:{line}: `{match.group(0)}` in an engine",
                )


# --- the crate graph in docs/architecture.md -------------------------------------------------


def crate_edges(meta: dict) -> set[tuple[str, str]]:
    """(crate, tether crate it depends on) for the crates under crates/ (normal dependencies)."""
    members = set(meta["workspace_members"])
    edges = set()
    for package in meta["packages"]:
        if package["id"] not in members or "/crates/" not in package["manifest_path"]:
            continue
        for dep in package["dependencies"]:
            if dep["name"].startswith("tether") and (dep.get("kind") or "normal") == "normal":
                edges.add((package["name"], dep["name"]))
    return edges


def mermaid_graph(meta: dict) -> str:
    """The Mermaid block docs/architecture.md shows (`--graph` prints it)."""
    edges = crate_edges(meta)
    names = sorted({name for edge in edges for name in edge})
    engines = [name for name in names if name in ENGINES or name == "tether-patch"]
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"  {n.replace('-', '_')}[{n}]" for n in names if n not in engines]
    lines.append(
        '  subgraph engines["engines: no sockets, no await, never tether-server or tether-py"]'
    )
    lines += [f"    {n.replace('-', '_')}[{n}]" for n in engines]
    lines.append("  end")
    lines += [f"  {a.replace('-', '_')} --> {b.replace('-', '_')}" for a, b in sorted(edges)]
    lines.append("```")
    return "\n".join(lines)


def check_doc_graph(root: Path, meta: dict, report: Report) -> None:
    doc = root / "docs" / "architecture.md"
    if not doc.exists():
        report.fail("doc-graph", "docs/architecture.md is missing")
        return
    block = re.search(r"```mermaid\n.*?```", doc.read_text(), re.DOTALL)
    shown = (
        set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", block.group(0), re.MULTILINE))
        if block
        else set()
    )
    shown = {(a.replace("_", "-"), b.replace("_", "-")) for a, b in shown}
    actual = crate_edges(meta)
    if shown != actual:
        missing = ", ".join(f"{a} -> {b}" for a, b in sorted(actual - shown)) or "none"
        extra = ", ".join(f"{a} -> {b}" for a, b in sorted(shown - actual)) or "none"
        report.fail(
            "doc-graph",
            f"docs/architecture.md's crate graph is not cargo metadata's (missing: {missing}; "
            f"not in Cargo.toml: {extra}); regenerate it with "
            "`python3 scripts/check-architecture.py --graph`",
        )


# --- python/tether reaches Rust only through tether._native ---------------------------------


def check_python_native(root: Path, report: Report) -> None:
    pyproject = (root / "pyproject.toml").read_text()
    module = re.search(r'^module-name\s*=\s*"([^"]+)"', pyproject, re.MULTILINE)
    if module is None or module.group(1) != "tether._native":
        report.fail(
            "python-native", "pyproject.toml: [tool.maturin] module-name is not tether._native"
        )
    package = root / "python" / "tether"
    for path in sorted(package.rglob("*")):
        if path.suffix in (".so", ".pyd", ".dll", ".dylib", ".c", ".pyx"):
            report.fail("python-native", f"{path.relative_to(root)}: a compiled module")
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for name in imported_names(tree, import_context(package, path)):
            top = name.split(".")[0]
            if top in ("ctypes", "cffi", "_cffi_backend"):
                report.fail("python-native", f"{path.relative_to(root)}: imports {name}")
            if "_native" in name.split(".") and not (
                name == "tether._native" or name.startswith("tether._native.")
            ):
                report.fail("python-native", f"{path.relative_to(root)}: imports {name}")


# --- web/ has no build step ------------------------------------------------------------------

_JS_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)""",
    re.MULTILINE,
)
_HTML_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc\s*=\s*['"]([^'"]+)['"]""", re.IGNORECASE)


def check_web(root: Path, report: Report) -> None:
    web = root / "web"
    for name in (
        "package.json",
        "package-lock.json",
        "node_modules",
        "webpack.config.js",
        "rollup.config.js",
        "vite.config.js",
        "esbuild.config.js",
        "babel.config.js",
        ".babelrc",
    ):
        if (web / name).exists():
            report.fail("web-no-build", f"web/{name}: a build step")
    tsconfig = web / "tsconfig.json"
    if tsconfig.exists() and not re.search(r'"noEmit"\s*:\s*true', tsconfig.read_text()):
        report.fail("web-no-build", "web/tsconfig.json: tsc must only type-check (noEmit: true)")
    for path in sorted(web.glob("*.js")):
        for match in _JS_IMPORT.finditer(strip_js_comments(path.read_text())):
            spec = next(g for g in match.groups() if g)
            if not spec.startswith(("./", "../")) or not (path.parent / spec).is_file():
                report.fail(
                    "web-no-build",
                    f"{path.relative_to(root)}: import {spec!r} is not a relative path to a file "
                    "(a bare specifier needs a bundler)",
                )
    for path in sorted(web.glob("*.html")):
        for src in _HTML_SCRIPT.findall(path.read_text()):
            if "://" in src:
                continue
            # Pages are served under other paths (/demo/sync/ loads ../demo-sync.js): every
            # script must be a file of web/ as it is, whatever the path it is fetched by.
            if not (web / Path(src).name).is_file():
                report.fail("web-no-build", f"{path.relative_to(root)}: script {src!r} is missing")


def strip_js_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/|^\s*//.*?$", "", text, flags=re.DOTALL | re.MULTILINE)


# --- import circles --------------------------------------------------------------------------


def strip_rust(text: str) -> str:
    """Rust source with comments, strings and char literals blanked (newlines kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not text[i - 1].isalnum()):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


_RUST_MOD = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*([;{])")
_RUST_PATH = re.compile(r"\b(crate|super|self)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)*)")


def rust_file_modules(src: Path) -> dict[tuple[str, ...], Path]:
    """Module path (from the crate root) of every file module under `src`, following `mod`."""
    modules: dict[tuple[str, ...], Path] = {}
    roots = [p for p in (src / "lib.rs", src / "main.rs") if p.exists()]
    for root_file in roots:
        todo: list[tuple[tuple[str, ...], Path]] = [((), root_file)]
        while todo:
            mod_path, file = todo.pop()
            if mod_path in modules and modules[mod_path] != file:
                continue
            modules.setdefault(mod_path, file)
            code = strip_rust(file.read_text())
            base = (
                file.parent
                if file.name in ("lib.rs", "main.rs", "mod.rs")
                else file.with_suffix("")
            )
            for m in _RUST_MOD.finditer(code):
                if m.group(2) != ";" or inline_module_at(code, m.start()):
                    continue  # an inline module, or a `mod x;` inside one (not used here)
                name = m.group(1)
                for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
                    if candidate.exists():
                        todo.append(((*mod_path, name), candidate))
                        break
    return modules


def inline_module_at(code: str, offset: int) -> tuple[str, ...]:
    """The inline modules (`mod t { ... }`) enclosing `offset` in a file."""
    stack: list[tuple[str, int]] = []
    depth = 0
    events = sorted(
        [(m.start(), "mod", m) for m in _RUST_MOD.finditer(code) if m.group(2) == "{"]
        + [(m.start(), m.group(0), None) for m in re.finditer(r"[{}]", code)]
    )
    for pos, kind, m in events:
        if pos >= offset:
            break
        if kind == "mod":
            stack.append((m.group(1), depth + 1))
        elif kind == "{":
            depth += 1
        else:
            if stack and stack[-1][1] == depth:
                stack.pop()
            depth -= 1
    return tuple(name for name, _ in stack)


def _use_bindings(code: str) -> dict[str, list[str]]:
    """Names a file binds at its top level with `use` (re-exports included): name -> path."""
    bindings: dict[str, list[str]] = {}
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        if inline_module_at(code, m.start()):
            continue
        for path in _expand_use_tree(re.sub(r"\s+", "", m.group(1))):
            name = path[-1]
            if " as " in name or "as" in name.split("::"):
                continue
            if name not in ("*", "self"):
                bindings[name] = path
            elif name == "self" and len(path) > 1:
                bindings[path[-2]] = path[:-1]
    return bindings


def _expand_use_tree(tree: str) -> list[list[str]]:
    """`a::{b,c::{d,e}}` -> [[a, b], [a, c, d], [a, c, e]] (renames `x as y` are dropped)."""
    if "{" not in tree:
        return (
            []
            if "as" in re.split(r"(?<=[a-z0-9_])as(?=[A-Z_a-z])", tree)[1:2]
            else [tree.split("::")]
        )
    head, _, rest = tree.partition("{")
    body = rest[: _matching_brace("{" + rest, 0) - 1]
    prefix = [p for p in head.split("::") if p]
    items, depth, current = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current += ch
    items.append(current)
    out = []
    for item in filter(None, items):
        out.extend([*prefix, *sub] for sub in _expand_use_tree(item))
    return out


def rust_edges(src: Path) -> dict[Path, set[Path]]:
    """File -> files it uses, in one crate's `src`. A `mod x;` declaration is not a use (a
    parent holds its children); a path through a child (`x::f()`), `crate::`, `super::` or
    `self::` is, and a name a module re-exports (`pub use a::X`) leads to the file defining it."""
    modules = rust_file_modules(src)
    by_file: dict[Path, tuple[str, ...]] = {}
    for mod_path, file in modules.items():
        by_file.setdefault(file, mod_path)
    codes = {file: strip_rust(file.read_text()) for file in by_file}
    bindings = {file: _use_bindings(code) for file, code in codes.items()}
    edges: dict[Path, set[Path]] = {file: set() for file in by_file}

    def absolute(path: list[str], here: tuple[str, ...]) -> tuple[str, ...] | None:
        head, rest = path[0], path[1:]
        if head == "crate":
            return tuple(rest)
        if head in ("self", "super"):
            base = list(here)
            if head == "super":
                base = base[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
            return (*base, *rest)
        if (*here, head) in modules:
            return (*here, head, *rest)
        return None  # an external crate or a local item

    def target(path: tuple[str, ...], hops: int = 0) -> Path | None:
        # The deepest file module that is a prefix of the path; a re-exported name there is
        # followed to where it comes from.
        for cut in range(len(path), -1, -1):
            if path[:cut] in modules:
                file = modules[path[:cut]]
                rest = path[cut:]
                if rest and hops < 8 and rest[0] in bindings[file]:
                    origin = absolute(bindings[file][rest[0]], path[:cut])
                    if origin is not None:
                        return target((*origin, *rest[1:]), hops + 1) or file
                return file
        return None

    for file, mod_path in by_file.items():
        code = codes[file]
        children = {
            m.group(1)
            for m in _RUST_MOD.finditer(code)
            if m.group(2) == ";" and not inline_module_at(code, m.start())
        }
        refs = [
            (m.start(), [m.group(1)], m.group(2))
            for m in _RUST_PATH.finditer(code)
            if m.group(2) or code[m.end() :].lstrip().startswith("::")  # not `pub(crate)`
        ]
        if children:
            child_re = re.compile(
                r"(?<![A-Za-z0-9_:])("
                + "|".join(sorted(children))
                + r")((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)"
            )
            reexports = [
                (m.start(), m.end())
                for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\b[^;]*;", code)
            ]
            refs += [
                (m.start(), [m.group(1)], m.group(2))
                for m in child_re.finditer(code)
                if not any(a <= m.start() < b for a, b in reexports)  # passed on, not used here
            ]
        for start, head, rest in refs:
            here = (*mod_path, *inline_module_at(code, start))
            segments = head + [seg.strip() for seg in rest.split("::") if seg.strip()]
            # `use super::{a, b::C}`: each member of the group is a path below the head.
            after = code[start + len(head[0]) + len(rest) :].lstrip()
            members: list[list[str]] = [[]]
            if after.startswith("::"):
                brace = after[2:].lstrip()
                if brace.startswith("{"):
                    open_at = code.index("{", start + len(head[0]) + len(rest))
                    body = code[open_at : _matching_brace(code, open_at) + 1]
                    members = _expand_use_tree(re.sub(r"\s+", "", body)) or [[]]
            for member in members:
                member = [seg for seg in member if seg != "self"]
                path = absolute(segments + member, here)
                found = target(path) if path is not None else None
                if found is not None and found != file:
                    edges[file].add(found)
    return edges


def _matching_brace(code: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(code)


def module_name(package: Path, path: Path) -> str:
    """`tether.ui._client` for python/tether/ui/_client.py, `tether.ui` for its __init__.py."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_context(package: Path, path: Path) -> str:
    """The name relative imports in `path` resolve against (a package's __init__ is inside the
    package: `from . import x` there means the package's x)."""
    name = module_name(package, path)
    return f"{name}.__init__" if path.name == "__init__.py" else name


NATIVE = "tether._native"


def imports(tree: ast.AST, context: str) -> list[tuple[str, str]]:
    """Every module an `import` in `tree` names (wherever it sits, but not under
    `if TYPE_CHECKING:`, which never runs), as (name, fallback): for `from p import x`, `p.x` if
    x is a module, else `p` (x is then an attribute of p)."""
    found: list[tuple[str, str]] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = context.split(".")
                base = base[: len(base) - node.level]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.extend((f"{prefix}.{alias.name}", prefix) for alias in node.names)
    return found


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in (
                "TYPE_CHECKING",
                "typing.TYPE_CHECKING",
            ):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def imported_names(tree: ast.AST, context: str) -> list[str]:
    return [name for pair in imports(tree, context) for name in pair]


def python_edges(package: Path) -> dict[Path, set[Path]]:
    files = {}
    for path in sorted(package.rglob("*.py")):
        files[module_name(package, path)] = path
    edges: dict[Path, set[Path]] = {path: set() for path in files.values()}
    for path in files.values():
        tree = ast.parse(path.read_text(), str(path))
        for name, fallback in imports(tree, import_context(package, path)):
            if name == NATIVE or name.startswith(NATIVE + "."):
                continue  # the extension module: no Python file
            target = files.get(name) or files.get(fallback)
            if target is not None and target != path:
                edges[path].add(target)
    return edges


def find_circles(edges: dict[Path, set[Path]]) -> list[tuple[list[Path], list[Path]]]:
    """One circle (as a path a -> ... -> a) per strongly connected component with two or more
    files (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    components: list[list[Path]] = []
    counter = [0]

    def visit(v: Path) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [(component, _one_cycle(edges, component)) for component in components]


def _one_cycle(edges: dict[Path, set[Path]], component: list[Path]) -> list[Path]:
    """A shortest circle through the component's first file."""
    members = set(component)
    start = component[0]
    previous: dict[Path, Path] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    cycle = [v]
                    while cycle[-1] != start:
                        cycle.append(previous[cycle[-1]])
                    return [start, *reversed(cycle[:-1]), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


def check_circles(root: Path, report: Report, allowed: list[frozenset[str]]) -> None:
    graphs = [rust_edges(src) for src in sorted(root.glob("crates/*/src"))]
    if (root / "python" / "tether").is_dir():
        graphs.append(python_edges(root / "python" / "tether"))
    for edges in graphs:
        for component, cycle in find_circles(edges):
            names = frozenset(str(p.relative_to(root)) for p in component)
            if any(names <= allowed_set for allowed_set in allowed):
                print(f"  allowed for now (see ALLOWED_CIRCLES): {', '.join(sorted(names))}")
                continue
            shown = " -> ".join(str(p.relative_to(root)) for p in cycle)
            report.fail(
                "import-circle",
                f"files import each other in a circle: {shown}"
                + (
                    f" (component: {', '.join(sorted(names))})"
                    if len(names) > len(cycle) - 1
                    else ""
                ),
            )


# --- self-test -------------------------------------------------------------------------------


def self_test() -> int:
    """Each check on a fixture that breaks its rule must fail, and pass on a clean one."""
    problems = []

    def expect(label: str, report: Report, rule: str | None) -> None:
        hit = [f for f in report.failures if rule and f.startswith(f"[{rule}]")]
        if rule is None and report.failures:
            problems.append(f"{label}: expected no failure, got {report.failures}")
        elif rule is not None and not hit:
            problems.append(f"{label}: expected a [{rule}] failure, got {report.failures}")
        else:
            print(f"  ok: {label}" + (f" -> {hit[0]}" if hit else ""))

    def meta(deps: dict[str, list[tuple[str, str | None]]], resolved: dict[str, list[str]]):
        ids = {
            name: f"{name} 0.1.0" for name in set(deps) | {d for v in resolved.values() for d in v}
        }
        return {
            "workspace_members": [ids[n] for n in deps],
            "packages": [
                {
                    "id": ids[n],
                    "name": n,
                    "manifest_path": f"/repo/crates/{n}/Cargo.toml",
                    "dependencies": [{"name": d, "kind": k} for d, k in deps.get(n, [])],
                }
                for n in ids
            ],
            "resolve": {
                "nodes": [
                    {
                        "id": ids[n],
                        "deps": [
                            {"pkg": ids[d], "dep_kinds": [{"kind": None}]}
                            for d in resolved.get(n, [])
                        ],
                    }
                    for n in ids
                ]
            },
        }

    clean = {e: [("serde", None)] for e in ENGINES} | {"tether-patch": [], "tether-server": []}
    report = Report()
    check_crate_graph(meta(clean, {}), report)
    expect("clean crate graph", report, None)
    broken = dict(
        clean,
        **{"tether-relay": [("tether-rooms", None)], "tether-rooms": [("tether-server", "dev")]},
    )
    report = Report()
    check_crate_graph(meta(broken, {}), report)
    expect("an engine reaching tether-server through another engine", report, "engines")
    report = Report()
    check_crate_graph(meta(dict(clean, **{"tether-patch": [("tether-sync", None)]}), {}), report)
    expect("tether-patch depending on a tether crate", report, "tether-patch")
    report = Report()
    check_crate_graph(
        meta(clean, {"tether-exec": ["regex", "tokio-util"], "tokio-util": ["tokio"]}), report
    )
    expect("an engine depending on tokio", report, "engines-sans-io")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        graph_meta = meta(dict(clean, **{"tether-server": [("tether-rooms", None)]}), {})
        (root / "docs").mkdir()
        (root / "docs" / "architecture.md").write_text(mermaid_graph(graph_meta))
        report = Report()
        check_doc_graph(root, graph_meta, report)
        expect("docs/architecture.md showing the graph --graph prints", report, None)
        stale = meta(
            dict(clean, **{"tether-server": [("tether-rooms", None), ("tether-js", None)]}), {}
        )
        report = Report()
        check_doc_graph(root, stale, report)
        expect("docs/architecture.md missing a dependency", report, "doc-graph")
        src = root / "crates" / "demo" / "src"
        (src / "net").mkdir(parents=True)
        (src / "lib.rs").write_text("mod a;\nmod b;\nmod c;\nmod net;\npub use a::A;\n")
        (src / "c.rs").write_text("pub struct C;\n")
        (src / "a.rs").write_text(
            "use crate::b::B; // crate::net would not count here\npub struct A;\n"
        )
        (src / "b.rs").write_text(
            'pub struct B;\nconst S: &str = "crate::a::A";\n'
            "#[cfg(test)]\nmod tests {\n    use super::*;\n    use crate::net::Conn;\n}\n"
        )
        (src / "net" / "mod.rs").write_text("mod conn;\npub use conn::Conn;\n")
        (src / "net" / "conn.rs").write_text("use super::super::c::C;\npub struct Conn;\n")
        pkg = root / "python" / "tether"
        (pkg / "ui").mkdir(parents=True)
        (pkg / "__init__.py").write_text("from . import ui\n")
        (pkg / "ui" / "__init__.py").write_text("from ._client import get\n")
        (pkg / "ui" / "_client.py").write_text("from ._settings import URL\n")
        (pkg / "ui" / "_settings.py").write_text("URL = 1\n")
        report = Report()
        check_circles(root, report, [])
        expect(
            "clean Rust and Python files (comments, strings, test modules ignored)", report, None
        )

        (src / "b.rs").write_text("use super::{a::A, net};\npub struct B;\n")
        report = Report()
        check_circles(root, report, [])
        expect(
            "a Rust circle a.rs -> b.rs -> a.rs (through a `use super::{...}` group)",
            report,
            "import-circle",
        )
        report = Report()
        check_circles(root, report, [frozenset({"crates/demo/src/a.rs", "crates/demo/src/b.rs"})])
        expect("the same circle on the allow-list", report, None)
        (src / "b.rs").write_text("pub struct B;\n")

        (pkg / "ui" / "_settings.py").write_text("def f():\n    from ._client import get\n")
        report = Report()
        check_circles(root, report, [])
        expect("a Python circle _client.py -> _settings.py -> _client.py", report, "import-circle")

        (pkg / "ui" / "_settings.py").write_text("import ctypes\n")
        (root / "pyproject.toml").write_text('[tool.maturin]\nmodule-name = "tether._native"\n')
        report = Report()
        check_python_native(root, report)
        expect("python/tether loading a library through ctypes", report, "python-native")

        web = root / "web"
        web.mkdir()
        (web / "a.js").write_text("import { b } from './b.js';\n")
        (web / "b.js").write_text("export const b = 1;\n")
        (web / "tsconfig.json").write_text('{"compilerOptions": {"noEmit": true}}')
        report = Report()
        check_web(root, report)
        expect("web/ with relative imports only", report, None)
        (web / "a.js").write_text("import { html } from 'lit';\n")
        report = Report()
        check_web(root, report)
        expect("web/ importing a bare specifier", report, "web-no-build")

        eng = root / "crates" / "tether-relay" / "src"
        eng.mkdir(parents=True)
        (eng / "lib.rs").write_text("// .await in a comment is fine\npub async fn run() {}\n")
        report = Report()
        check_engine_sources(root, report)
        expect("an engine with an async fn", report, "engines-sans-io")

    if problems:
        print("check-architecture self-test FAILED:", *problems, sep="\n  ")
        return 1
    print("check-architecture self-test: every check fails on a fixture that breaks its rule")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true", help="run the checks on fixtures")
    parser.add_argument("--graph", action="store_true", help="print the crate graph as Mermaid")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    root = Path(__file__).resolve().parent.parent
    meta = cargo_metadata(root)
    if args.graph:
        print(mermaid_graph(meta))
        return 0
    report = Report()
    check_crate_graph(meta, report)
    check_doc_graph(root, meta, report)
    check_engine_sources(root, report)
    check_python_native(root, report)
    check_web(root, report)
    check_circles(root, report, ALLOWED_CIRCLES)
    if report.failures:
        print("architecture rules broken (docs/architecture.md):")
        for failure in report.failures:
            print(f"  {failure}")
        return 1
    print(
        "architecture rules hold: engines, tether-patch, python -> tether._native, web/, no import circles"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
