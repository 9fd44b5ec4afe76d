#!/usr/bin/env python3
"""Finds file-level import circles among the Rust source files of each crate.

A file imports another when it names an item of that file's module: `use crate::a::b`,
`use super::x`, `use self::x`, `use child::x` (a module the file declares), or an inline path
such as `crate::a::f()`. A `mod x;` declaration alone is not an import (a parent declaring its
children is the tree, not a dependency). Comments, doc comments included, are ignored.

Usage: scripts/rust-import-cycles.py [CRATE_DIR ...]   (default: every crates/*/ with a src/)
Prints each circle (file -> file: the paths that tie them) and exits 1 if there is one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

USE_RE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
INLINE_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
MOD_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", re.M)
CFG_TEST_MOD_RE = re.compile(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", re.S)


def strip_comments(text: str) -> str:
    """Drops // and /* */ comments (string literals are kept; a `//` inside one is rare here)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def strip_test_module(text: str) -> str:
    """Drops an inline `#[cfg(test)] mod tests { ... }` (its `use super::*` is not the file's)."""
    m = CFG_TEST_MOD_RE.search(text)
    if not m:
        return text
    depth, i = 1, m.end()
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[: m.start()] + text[i:]


def expand(tree: str) -> list[str]:
    """`a::{b, c::{d, e as f}}` -> [`a::b`, `a::c::d`, `a::c::e`]."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out: list[str] = []

    def walk(prefix: str, s: str) -> None:
        i = s.find("{")
        if i < 0:
            out.append(prefix + s)
            return
        head, body = s[:i], s[i + 1 : s.rfind("}")]
        depth, start = 0, 0
        for j, c in enumerate(body + ","):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 0:
                part = body[start:j]
                if part:
                    walk(prefix + head, part)
                start = j + 1

    walk("", tree)
    return out


class Crate:
    def __init__(self, root: Path) -> None:
        self.src = root / "src"
        # module path (tuple) -> file; a file's module path -> its declared children
        self.files: dict[tuple[str, ...], Path] = {}
        for f in sorted(self.src.rglob("*.rs")):
            rel = f.relative_to(self.src).with_suffix("").parts
            if rel[-1] in ("lib", "main", "mod"):
                rel = rel[:-1]
            if f.name == "main.rs" and (self.src / "lib.rs").exists():
                rel = ("<main>",)
            self.files[tuple(rel)] = f

    def module_of(self, f: Path) -> tuple[str, ...]:
        return next(m for m, p in self.files.items() if p == f)

    def resolve(self, path: list[str]) -> Path | None:
        """The file holding the longest module prefix of `path` (an absolute module path)."""
        for n in range(len(path), -1, -1):
            f = self.files.get(tuple(path[:n]))
            if f is not None:
                return f
        return None

    def imports(self, f: Path) -> dict[Path, set[str]]:
        text = strip_test_module(strip_comments(f.read_text()))
        here = self.module_of(f)
        if here == ("<main>",):
            return {}
        children = set(MOD_RE.findall(text))
        raw: list[str] = []
        for tree in USE_RE.findall(text):
            raw.extend(expand(tree))
        for head, rest in INLINE_RE.findall(text):
            raw.append(head + rest)
        out: dict[Path, set[str]] = {}
        for p in raw:
            parts = [x for x in p.split("::") if x]
            if not parts:
                continue
            if parts[0] == "crate":
                target = parts[1:]
            elif parts[0] in ("super", "self"):
                base = list(here)
                while parts and parts[0] in ("super", "self"):
                    if parts.pop(0) == "super" and base:
                        base.pop()
                target = base + parts
            elif parts[0] in children:
                target = list(here) + parts
            else:
                continue  # another crate
            dest = self.resolve([t for t in target if t not in ("*", "self")])
            if dest is not None and dest != f:
                out.setdefault(dest, set()).add(p)
        return out


def cycles(graph: dict[Path, dict[Path, set[str]]]) -> list[list[Path]]:
    """Strongly connected components of more than one file (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on: set[Path] = set()
    found: list[list[Path]] = []
    counter = [0]

    def visit(v: Path) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parent.parent
    roots = [Path(a) for a in argv] or sorted(p.parent for p in repo.glob("crates/*/src"))
    bad = 0
    files = 0
    for root in roots:
        crate = Crate(root)
        graph = {f: crate.imports(f) for f in crate.files.values()}
        files += len(graph)
        for comp in cycles(graph):
            bad += 1
            print(f"circle in {root}: {len(comp)} files")
            for a in comp:
                for b in comp:
                    if b in graph[a]:
                        names = ", ".join(sorted(graph[a][b]))
                        print(f"  {a.relative_to(root)} -> {b.relative_to(root)}: {names}")
    print(f"rust-import-cycles: {files} files in {len(roots)} crates, {bad} circle(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
