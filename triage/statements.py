"""Source -> statement index. Locations are fixed here, once.

Every statement of every Python file gets a stable ID, a line span and a trigger phase.
Compound statements span their header only, so a finding never covers a whole block.

Files that do not parse (Python 2, syntax errors, absurd nesting) are segmented into
logical lines with :mod:`tokenize`; each segment is then parsed on its own where it can
be, so detectors still see an AST for most statements of a Python 2 file.
"""

from __future__ import annotations

import ast
import io
import posixpath
import re
import textwrap
import tokenize
from dataclasses import dataclass, field

from triage.model import FileKind, Phase, SourceFile, Statement

#: setuptools/distutils commands whose overriding ``run`` executes during installation.
INSTALL_COMMANDS = frozenset(
    {
        "install", "develop", "egg_info", "build", "build_py", "build_ext", "sdist",
        "bdist_egg", "bdist_wheel", "install_lib", "install_scripts", "install_data",
        "build_scripts", "easy_install",
    }
)
STARTUP_MODULES = frozenset({"sitecustomize.py", "usercustomize.py"})

_COMPOUND = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler,
) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ()) + (
    (ast.Match,) if hasattr(ast, "Match") else ()
)


@dataclass(frozen=True)
class FileIndex:
    """All statements of one file, with their AST nodes where parsing succeeded."""

    file: SourceFile
    """The indexed file."""
    statements: tuple[Statement, ...]
    """Statements in source order."""
    nodes: tuple[ast.AST | None, ...]
    """AST node of each statement (same order); None for unparseable fallback segments; a
    Module when a fallback line holds several statements (``import os; os.system(x)``)."""
    fallback: str | None = None
    """Why the file was segmented line by line instead of parsed whole (None if parsed)."""
    lines: tuple[str, ...] = ()
    """The file's lines (no line endings)."""
    _by_id: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def get(self, statement_id: str) -> Statement:
        """Statement by ID (KeyError if unknown)."""
        return self.statements[self._by_id[statement_id]]

    def node_of(self, statement_id: str) -> ast.AST | None:
        """AST node of a statement, or None in fallback mode."""
        return self.nodes[self._by_id[statement_id]]

    def __contains__(self, statement_id: object) -> bool:
        return statement_id in self._by_id

    def at_line(self, line: int) -> Statement | None:
        """Innermost statement whose span covers ``line``."""
        best: Statement | None = None
        for st in self.statements:
            if st.start_line <= line <= st.end_line and (best is None or st.depth >= best.depth):
                best = st
        return best


def header_nodes(node: ast.AST) -> list[ast.AST]:
    """The expressions that belong to a statement itself, not to nested statements.

    For simple statements this is the node itself; for compound statements, the
    header parts (test, iterator, context managers, bases, decorators, defaults...).
    """
    if isinstance(node, ast.Module):
        return list(node.body)
    if not isinstance(node, _COMPOUND):
        return [node]
    parts: list[ast.AST] = []
    if isinstance(node, (ast.If, ast.While)):
        parts.append(node.test)
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        parts += [node.target, node.iter]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        parts += list(node.items)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        parts += list(node.decorator_list) + [node.args]
        if node.returns is not None:
            parts.append(node.returns)
    elif isinstance(node, ast.ClassDef):
        parts += list(node.decorator_list) + list(node.bases) + list(node.keywords)
    elif isinstance(node, ast.ExceptHandler):
        if node.type is not None:
            parts.append(node.type)
    elif hasattr(ast, "Match") and isinstance(node, ast.Match):
        parts.append(node.subject)
    return parts


def own_nodes(node: ast.AST) -> list[ast.AST]:
    """Every AST node inside a statement's own part (header), iteratively, no nested bodies.

    The result is memoised on the node itself: every detector asks for it, and walking
    the same statement dozens of times dominated the run time on large packages.
    Callers must treat the returned list as read-only.
    """
    cached = getattr(node, "_triage_own", None)
    if cached is not None:
        return cached
    out: list[ast.AST] = []
    stack = list(header_nodes(node))
    while stack:
        cur = stack.pop()
        out.append(cur)
        for child in ast.iter_child_nodes(cur):
            if isinstance(child, (ast.stmt, ast.ExceptHandler)):
                continue  # nested bodies belong to their own statements
            stack.append(child)
    node._triage_own = out  # type: ignore[attr-defined]
    return out


def _children(node: ast.AST) -> list[ast.stmt | ast.ExceptHandler]:
    """Nested statements of a compound statement, in source order."""
    kids: list[ast.stmt | ast.ExceptHandler] = []
    for name in ("body", "handlers", "orelse", "finalbody"):
        kids += list(getattr(node, name, []) or [])
    if hasattr(ast, "Match") and isinstance(node, ast.Match):
        for case in node.cases:
            kids += list(case.body)
    return kids


def _header_end(node: ast.AST) -> int:
    start = node.lineno  # type: ignore[attr-defined]
    if not isinstance(node, _COMPOUND):
        return max(start, getattr(node, "end_lineno", None) or start)
    end = start
    for part in header_nodes(node):
        if isinstance(part, (ast.FunctionDef, ast.ClassDef)):
            continue
        e = getattr(part, "end_lineno", None)
        if e is not None and getattr(part, "lineno", start) >= start:
            end = max(end, e)
    return end


def _base_name(expr: ast.expr) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return ""


def is_install_command_class(node: ast.ClassDef,
                             aliases: dict[str, str] | None = None) -> bool:
    """True when a class subclasses a setuptools/distutils command that runs on install.

    ``aliases`` maps local names to imported names (``_install`` -> ``install`` for
    ``from setuptools.command.install import install as _install``).
    """
    for b in node.bases:
        name = _base_name(b)
        if name in INSTALL_COMMANDS or (aliases or {}).get(name) in INSTALL_COMMANDS:
            return True
    return False


def command_aliases(tree: ast.Module) -> dict[str, str]:
    """Local names bound to setuptools/distutils command classes by ``import ... as``."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and "command" in node.module:
            for a in node.names:
                if a.asname and a.name in INSTALL_COMMANDS:
                    out[a.asname] = a.name
    return out


def is_main_guard(node: ast.AST) -> bool:
    """True for ``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    if len(t.ops) != 1 or not isinstance(t.ops[0], ast.Eq):
        return False
    sides = [t.left, t.comparators[0]]
    names = [x for x in sides if isinstance(x, ast.Name) and x.id == "__name__"]
    consts = [x for x in sides if isinstance(x, ast.Constant) and x.value == "__main__"]
    return bool(names and consts)


def module_phase(src: SourceFile) -> Phase:
    """Phase of a file's module-level statements."""
    if src.kind is FileKind.DECODED and src.origin_phase is not None:
        return src.origin_phase
    base = posixpath.basename(src.path.split("!")[-1].split("#")[0])
    if src.kind is FileKind.PTH or base in STARTUP_MODULES:
        return Phase.STARTUP
    if base == "setup.py":
        return Phase.INSTALL
    return Phase.IMPORT


class _Builder:
    """Walks a parsed module iteratively and emits statements with phases."""

    def __init__(self, src: SourceFile, lines: list[str]) -> None:
        self.src = src
        self.lines = lines
        self.stmts: list[Statement] = []
        self.nodes: list[ast.AST | None] = []
        self.per_line: dict[int, int] = {}

    def _id(self, line: int) -> str:
        n = self.per_line.get(line, 0)
        self.per_line[line] = n + 1
        return f"{self.src.path}:{line}:{n}"

    def text_of(self, node: ast.AST, start: int, end: int) -> str:
        if start == end and not isinstance(node, _COMPOUND):
            line = self.lines[start - 1] if start - 1 < len(self.lines) else ""
            raw = line.encode("utf-8", "surrogatepass")
            col = getattr(node, "col_offset", 0) or 0
            ecol = getattr(node, "end_col_offset", None)
            seg = raw[col:ecol] if ecol is not None else raw[col:]
            text = seg.decode("utf-8", "replace").strip()
            return text or line.strip()
        return "\n".join(self.lines[start - 1 : end])

    def add(self, node: ast.stmt | ast.ExceptHandler, phase: Phase, depth: int,
            parent: str | None, scope: str, line_offset: int = 0) -> str:
        start = node.lineno + line_offset
        end = _header_end(node) + line_offset
        sid = self._id(start)
        self.stmts.append(
            Statement(
                id=sid, file=self.src.path, start_line=start, end_line=end,
                text=self.text_of(node, start, end), kind=type(node).__name__,
                phase=phase, depth=depth, parent=parent, scope=scope,
            )
        )
        self.nodes.append(node)
        return sid


def _called_local_functions(tree: ast.Module) -> dict[str, set[str]]:
    """Map function name -> names it calls (bare name or attribute), in one pass.

    Calls inside a nested function count for the nested function only.
    """
    calls: dict[str, set[str]] = {}
    stack: list[tuple[ast.AST, str | None]] = [(tree, None)]
    while stack:
        node, owner = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                calls.setdefault(child.name, set())
                stack.append((child, child.name))
                continue
            if owner is not None and isinstance(child, ast.Call):
                if isinstance(child.func, ast.Name):
                    calls[owner].add(child.func.id)
                elif isinstance(child.func, ast.Attribute):
                    calls[owner].add(child.func.attr)
            stack.append((child, owner))
    return calls


def _phase_by_function(tree: ast.Module, base: Phase) -> dict[str, Phase]:
    """Functions reachable from module-level code or install hooks get that phase."""
    defined = {
        n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    graph = _called_local_functions(tree)
    aliases = command_aliases(tree)
    roots: dict[str, Phase] = {}
    # module-level calls (outside any def) run at the module's phase
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, in_def = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if base is not Phase.INSTALL and is_main_guard(child):
                continue  # runs only when executed as a script, not on import
            if isinstance(child, ast.ClassDef) and is_install_command_class(child, aliases):
                for meth in child.body:
                    if isinstance(meth, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        roots[meth.name] = Phase.INSTALL
                continue
            if isinstance(child, ast.Call):
                fname = (
                    child.func.id if isinstance(child.func, ast.Name)
                    else child.func.attr if isinstance(child.func, ast.Attribute) else None
                )
                if fname in defined and fname not in roots:
                    roots[fname] = base
            stack.append((child, in_def))
    phases: dict[str, Phase] = {}
    work = list(roots.items())
    while work:
        name, ph = work.pop()
        old = phases.get(name)
        if old is not None and old.order <= ph.order:
            continue
        phases[name] = ph
        for callee in graph.get(name, ()):
            if callee in defined:
                work.append((callee, ph))
    return phases


def _index_tree(src: SourceFile, tree: ast.Module, lines: list[str]) -> _Builder:
    b = _Builder(src, lines)
    base = module_phase(src)
    fn_phase = _phase_by_function(tree, base)
    aliases = command_aliases(tree)
    # stack items: node, phase, depth, parent id, scope, in_install_class
    work: list[tuple[ast.stmt | ast.ExceptHandler, Phase, int, str | None, str, bool]] = [
        (n, base, 0, None, "<module>", False) for n in reversed(tree.body)
    ]
    while work:
        node, phase, depth, parent, scope, in_cmd = work.pop()
        sid = b.add(node, phase, depth, parent, scope)
        kids = _children(node)
        if not kids:
            continue
        kphase, kscope, kcmd = phase, scope, in_cmd
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kscope = node.name if scope == "<module>" else f"{scope}.{node.name}"
            if in_cmd:
                kphase = Phase.INSTALL
            else:
                kphase = fn_phase.get(node.name, Phase.CALL)
        elif isinstance(node, ast.ClassDef):
            kscope = node.name if scope == "<module>" else f"{scope}.{node.name}"
            kcmd = is_install_command_class(node, aliases)
        elif depth == 0 and phase is Phase.IMPORT and is_main_guard(node):
            kphase = Phase.CALL  # a script entry point, not import-time code
        for kid in reversed(kids):
            work.append((kid, kphase, depth + 1, sid, kscope, kcmd))
    return b


_HEADER_RE = re.compile(
    r"^(if|elif|else|for|while|with|try|except|finally|def|class|async\s+def|async\s+for|"
    r"async\s+with)\b.*:\s*(#.*)?$"
)


def _logical_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) line spans of logical lines, via tokenize; physical lines on failure."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    last_line = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENCODING, tokenize.ENDMARKER):
                continue
            if start is None:
                start = tok.start[0]
            last_line = tok.end[0]
            if tok.type == tokenize.NEWLINE:
                spans.append((start, tok.start[0]))
                start = None
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        covered = spans[-1][1] if spans else 0
        phys = text.splitlines()
        spans += [(i, i) for i in range(covered + 1, len(phys) + 1) if phys[i - 1].strip()]
        return spans
    if start is not None:
        spans.append((start, max(start, last_line)))
    return spans


_PY2_STMT = re.compile(r"^(\s*)(exec|print)\s+(?![\s(=])(.+?)\s*$", re.S)


def _parse_segment(seg: str) -> ast.stmt | ast.Module | None:
    """Parse one logical line; several statements on it come back as a Module."""
    node = _parse_one(seg)
    if node is None:
        # Python 2 statements: ``exec "code"`` / ``print x`` -> call form, so detectors see them
        m = _PY2_STMT.match(seg.lstrip() if "\n" not in seg else textwrap.dedent(seg))
        if m and not m.group(3).startswith(">>"):
            node = _parse_one(f"{m.group(2)}({m.group(3)})")
    return node


def _parse_one(seg: str) -> ast.stmt | ast.Module | None:
    # one physical line: lstrip is enough (dedent's regex is slow on 5,000-space indents)
    body = seg.lstrip() if "\n" not in seg else textwrap.dedent(seg)
    first = body.lstrip().split("\n", 1)[0]
    if re.match(r"^(elif|else|except|finally)\b", first):
        return None
    if body.rstrip().endswith(":") or _HEADER_RE.match(body.strip().split("\n")[-1]):
        body = body.rstrip() + "\n    pass"
    try:
        mod = ast.parse(body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not mod.body:
        return None
    return mod.body[0] if len(mod.body) == 1 else mod


def _index_fallback(src: SourceFile, lines: list[str]) -> _Builder:
    b = _Builder(src, lines)
    base = module_phase(src)
    # indentation stack of (indent, phase, statement id, scope, in_install_class)
    stack: list[tuple[int, Phase, str, str, bool]] = []
    for start, end in _logical_lines(src.text):
        seg = "\n".join(lines[start - 1 : end])
        indent = len(seg) - len(seg.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        phase, parent, scope, in_cmd = base, None, "<module>", False
        if stack:
            _, phase, parent, scope, in_cmd = stack[-1]
        node = _parse_segment(seg)
        sid = b._id(start)
        kind = type(node).__name__ if node is not None else "Line"
        if node is not None:
            ast.increment_lineno(node, start - 1)
        b.stmts.append(Statement(id=sid, file=src.path, start_line=start, end_line=end,
                                 text=seg, kind=kind, phase=phase, depth=len(stack),
                                 parent=parent, scope=scope))
        b.nodes.append(node)
        head = seg.strip()
        if head.endswith(":") or _HEADER_RE.match(head.split("\n")[-1]):
            kphase, kscope, kcmd = phase, scope, in_cmd
            m = re.match(r"^(?:async\s+)?def\s+(\w+)", head)
            c = re.match(r"^class\s+(\w+)\s*(\(([^)]*)\))?", head)
            if m:
                kphase = Phase.INSTALL if in_cmd else (phase if phase is Phase.CALL else Phase.CALL)
                kscope = m.group(1) if scope == "<module>" else f"{scope}.{m.group(1)}"
            elif c:
                bases = {x.strip().split(".")[-1] for x in (c.group(3) or "").split(",")}
                kcmd = bool(bases & INSTALL_COMMANDS)
                kscope = c.group(1)
            stack.append((indent, kphase, sid, kscope, kcmd))
    return b


def _index_pth(src: SourceFile, lines: list[str]) -> _Builder:
    """A .pth file runs each line that starts with ``import`` at every interpreter start."""
    b = _Builder(src, lines)
    for no, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        node = None
        if re.match(r"^import[ \t]", line):
            node = _parse_segment(line)
            if node is not None:
                ast.increment_lineno(node, no - 1)
        b.stmts.append(Statement(id=b._id(no), file=src.path, start_line=no, end_line=no,
                                 text=line, kind=type(node).__name__ if node else "PathEntry",
                                 phase=Phase.STARTUP))
        b.nodes.append(node)
    return b


def index_file(src: SourceFile) -> FileIndex:
    """Index one file. Never raises on bad input: unparseable files use fallback segmentation.

    Args:
        src: a Python, .pth or decoded file.

    Returns:
        The statement index, with ``fallback`` set when the file did not parse whole.
    """
    lines = src.text.splitlines()
    fallback: str | None = None
    if src.kind is FileKind.PTH:
        b = _index_pth(src, lines)
    else:
        try:
            tree = ast.parse(src.text, filename=src.path, type_comments=False)
            b = _index_tree(src, tree, lines)
        except SyntaxError as exc:
            fallback = f"does not parse as Python 3 ({exc.msg}, line {exc.lineno})"
            b = _index_fallback(src, lines)
        except (RecursionError, MemoryError, ValueError) as exc:
            fallback = f"does not parse ({type(exc).__name__}: nesting too deep or bad bytes)"
            b = _index_fallback(src, lines)
    order = sorted(range(len(b.stmts)), key=lambda i: (b.stmts[i].start_line, b.stmts[i].depth))
    stmts = tuple(b.stmts[i] for i in order)
    nodes = tuple(b.nodes[i] for i in order)
    return FileIndex(file=src, statements=stmts, nodes=nodes, fallback=fallback,
                     lines=tuple(lines), _by_id={s.id: i for i, s in enumerate(stmts)})
