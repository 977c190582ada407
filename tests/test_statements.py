"""Statement index: exact spans, IDs and phases, including hostile and Python 2 input."""

from __future__ import annotations

import textwrap

from triage.model import FileKind, Phase, SourceFile
from triage.statements import index_file

SETUP = textwrap.dedent('''\
    import os
    from setuptools.command.install import install
    class X(install):
        def run(self):
            try:
                os.system("x"); y = 2
            except: pass
    def helper():
        exec("1")
    def later():
        pass
    helper()
    setup(
      name="a",
    )
''')


def rows(src: SourceFile) -> list[tuple[str, int, int, str, str]]:
    ix = index_file(src)
    return [(s.id, s.start_line, s.end_line, s.kind, s.phase.value) for s in ix.statements]


def test_spans_ids_and_phases_of_setup_py() -> None:
    assert rows(SourceFile("p/setup.py", SETUP)) == [
        ("p/setup.py:1:0", 1, 1, "Import", "install"),
        ("p/setup.py:2:0", 2, 2, "ImportFrom", "install"),
        ("p/setup.py:3:0", 3, 3, "ClassDef", "install"),
        ("p/setup.py:4:0", 4, 4, "FunctionDef", "install"),
        ("p/setup.py:5:0", 5, 5, "Try", "install"),
        ("p/setup.py:6:0", 6, 6, "Expr", "install"),
        ("p/setup.py:6:1", 6, 6, "Assign", "install"),
        ("p/setup.py:7:0", 7, 7, "ExceptHandler", "install"),
        ("p/setup.py:7:1", 7, 7, "Pass", "install"),
        ("p/setup.py:8:0", 8, 8, "FunctionDef", "install"),
        ("p/setup.py:9:0", 9, 9, "Expr", "install"),  # helper() is called at module level
        ("p/setup.py:10:0", 10, 10, "FunctionDef", "install"),
        ("p/setup.py:11:0", 11, 11, "Pass", "call"),  # later() is never called
        ("p/setup.py:12:0", 12, 12, "Expr", "install"),
        ("p/setup.py:13:0", 13, 15, "Expr", "install"),
    ]


def test_statement_text_of_shared_line_is_sliced() -> None:
    ix = index_file(SourceFile("p/setup.py", SETUP))
    assert ix.get("p/setup.py:6:0").text == 'os.system("x")'
    assert ix.get("p/setup.py:6:1").text == "y = 2"
    assert ix.at_line(14).id == "p/setup.py:13:0"


def test_module_phases_by_file_role() -> None:
    body = "import os\nos.getcwd()\ndef f():\n    return 1\n"
    assert index_file(SourceFile("p/mod.py", body)).statements[1].phase is Phase.IMPORT
    assert index_file(SourceFile("p/mod.py", body)).statements[3].phase is Phase.CALL
    assert index_file(SourceFile("sitecustomize.py", body)).statements[1].phase is Phase.STARTUP


def test_python2_file_is_indexed_line_by_line_with_ast_where_possible() -> None:
    py2 = 'import os\nprint "hello"\nclass A(install):\n    def run(self):\n' \
          '        exec "code"\n        os.system("x")\n'
    ix = index_file(SourceFile("p/setup.py", py2))
    assert ix.fallback is not None and "Missing parentheses" in ix.fallback
    got = [(s.start_line, s.kind, s.phase.value, s.scope) for s in ix.statements]
    assert got == [
        (1, "Import", "install", "<module>"),
        (2, "Expr", "install", "<module>"),
        (3, "ClassDef", "install", "<module>"),
        (4, "FunctionDef", "install", "A"),
        (5, "Expr", "install", "A.run"),
        (6, "Expr", "install", "A.run"),
    ]


def test_pth_lines_are_startup_statements() -> None:
    src = SourceFile("x.pth", "import os; os.system('id')\n/opt/lib\n", kind=FileKind.PTH)
    assert rows(src) == [
        ("x.pth:1:0", 1, 1, "Module", "startup"),
        ("x.pth:2:0", 2, 2, "PathEntry", "startup"),
    ]


def test_hostile_nesting_never_crashes() -> None:
    parens = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
    ix = index_file(SourceFile("deep.py", parens))
    assert ix.fallback and [s.start_line for s in ix.statements] == [1]
    blocks = "".join("    " * i + "if x:\n" for i in range(5000)) + "    " * 5000 + "pass\n"
    ix = index_file(SourceFile("deep2.py", blocks))
    assert ix.fallback and len(ix.statements) == 5001
    chain = "x = " + "+".join(["1"] * 100_000) + "\n"
    ix = index_file(SourceFile("chain.py", chain))
    assert ix.fallback and len(ix.statements) == 1


def test_garbage_and_empty_files() -> None:
    assert index_file(SourceFile("e.py", "")).statements == ()
    ix = index_file(SourceFile("g.py", "\x00\x01 def (((\n'''unterminated\n"))
    assert ix.fallback is not None


def test_aliased_install_command_and_main_guard_phases() -> None:
    src = textwrap.dedent('''\
        from setuptools.command.install import install as _install
        class Hook(_install):
            def run(self):
                go()
        def go():
            pass
    ''')
    ix = index_file(SourceFile("p/pkg/hooks.py", src))
    assert [(s.start_line, s.phase.value) for s in ix.statements] == [
        (1, "import"), (2, "import"), (3, "import"), (4, "install"), (5, "import"), (6, "install"),
    ]
    mod = 'def main():\n    work()\ndef work():\n    pass\nif __name__ == "__main__":\n    main()\n'
    ix = index_file(SourceFile("p/pkg/cli.py", mod))
    assert [(s.start_line, s.phase.value) for s in ix.statements] == [
        (1, "import"), (2, "call"), (3, "import"), (4, "call"), (5, "import"), (6, "call"),
    ]
