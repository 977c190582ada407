"""Defense-evasion detector for generic obfuscation (``code_obfuscation``).

Flags the statement that holds an obfuscated or embedded payload: a decoded literal that is
code and gets executed, ``exec`` of an unreadable blob, packer markers (PyArmor and
friends), underscore/``lIlI`` identifier mazes, random gibberish class or function names,
lambda mazes and absurdly long packed lines.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.evasion_decode import decodings, entropy, executes
from triage.indicators.system_common import facts, scaled
from triage.model import Signal, Statement
from triage.statements import is_install_command_class

_PACKER = re.compile(r"__pyarmor__|pyarmor_runtime|__pyarmor_enter|\bpytransform\b|"
                     r"(?i:obfuscated\s+(with|by|using)\s+\w+|\bpyobfuscate\b|__obfuscator__|"
                     r"\bBlankOBF\b|\bpyobf\b|\bKramer\b)")
_MAZE_NAME = re.compile(r"^_{4,}$|^[lI]{5,}$|^[lI][lI1]{5,}$|^[O0]{5,}$|^_0x[0-9a-fA-F]{3,}$|"
                        r"^_*[lI]{2,}_*[lI]{2,}_*$")
_MAX_PER_FILE = 25


def _gibberish(name: str) -> bool:
    """A long identifier that looks like random letters (``VsPgFaHoXnXtuO...``).

    CamelCase names made of words (``AddTagsToResourceRequest``) have words of four or
    five letters on average; random mixed-case strings split into one- to three-letter runs.
    """
    if len(name) < 24 or not name.isalpha() or not name.isascii():
        return False
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)
    if len(words) >= 8 and len(name) / len(words) < 3.2:
        return True
    vowels = sum(1 for c in name.lower() if c in "aeiouy")
    return name.islower() and vowels / len(name) < 0.12


def _names(node: ast.AST, own: list[ast.AST]) -> Iterator[str]:
    for sub in own:
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.arg):
            yield sub.arg
        elif isinstance(sub, ast.Attribute):
            yield sub.attr
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name


def _lambda_depth(own: list[ast.AST]) -> int:
    best = 0
    stack: list[tuple[ast.AST, int]] = [(n, 0) for n in own if isinstance(n, ast.Lambda)]
    while stack:
        cur, depth = stack.pop()
        if isinstance(cur, ast.Lambda):
            depth += 1
            best = max(best, depth)
        stack.extend((c, depth) for c in ast.iter_child_nodes(cur))
    return best


def _long_blob(own: list[ast.AST]) -> str | None:
    """Description of a long unreadable literal inside the statement, if any."""
    for sub in own:
        if isinstance(sub, ast.Constant) and isinstance(sub.value, (str, bytes)):
            value = sub.value
            if len(value) < 200:
                continue
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            head = text[:4096]
            spaces = sum(1 for c in head if c in " \n\t") / len(head)
            binary = isinstance(value, bytes) and sum(
                1 for b in value[:2048] if b < 32 or b > 126) > len(value[:2048]) // 4
            if binary or (spaces < 0.02 and entropy(head) > 4.5):
                return f"a {len(value)}-character unreadable literal"
    return None


def _reason(ctx: FileContext, st: Statement, node: ast.AST | None) -> tuple[str, float] | None:
    if node is None:
        if _PACKER.search(st.text):
            return "carries a code-packer marker", 0.7
        return None
    text_hit = _PACKER.search(st.text[:5000])
    if text_hit:
        return f"carries the code-packer marker `{text_hit.group(0)}`", 0.7
    own = facts(ctx).own(st)
    maze = sorted({n for n in _names(node, own) if _MAZE_NAME.match(n)})
    if maze:
        return f"uses meaningless identifiers such as `{maze[0]}`", 0.7
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and _gibberish(
            node.name):
        conf = 0.75 if isinstance(node, ast.ClassDef) and is_install_command_class(node) else 0.55
        return f"is named with random letters (`{node.name[:40]}`)", conf
    if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and _gibberish(t.id)
                                            for t in node.targets) and executes(ctx, st):
        return "binds code to a random-letter name", 0.6
    if executes(ctx, st, processes=False):
        blob = _long_blob(own)
        if blob:
            return f"executes {blob}", 0.8
    if _lambda_depth(own) >= 3:
        return "builds a maze of nested lambdas", 0.6
    width = max((len(line) for line in st.text.splitlines()), default=0)
    if width > 3000 and sum(1 for n in own if isinstance(n, ast.Call)) >= 15:
        return f"packs code into a {width}-character line", 0.6
    return None


@detector("obfuscated_code", "code_obfuscation")
def obfuscated_code(ctx: FileContext) -> Iterator[Signal]:
    """Statements holding obfuscated or embedded payloads."""
    found: dict[str, tuple[Statement, str, float]] = {}
    for d in decodings(ctx):
        st = d.statement
        if (d.is_python or d.interesting and d.binary) and executes(ctx, st, processes=False):
            layers = "+".join(dict.fromkeys(d.layers))
            found[st.id] = (st, f"executes a {layers}-hidden payload", 0.85)
    for st, node in ctx.statements():
        if st.id in found:
            continue
        hit = _reason(ctx, st, node)
        if hit:
            found[st.id] = (st, hit[0], hit[1])
    items = sorted(found.values(), key=lambda x: (-x[2], x[0].start_line))[:_MAX_PER_FILE]
    for st, why, base in sorted(items, key=lambda x: x[0].start_line):
        yield ctx.signal("code_obfuscation", st, f"statement {why}",
                         confidence=scaled(base, st, ctx.source.path),
                         detector="obfuscated_code")
