"""Pure leaderboard renderers on a hand-built board."""

from __future__ import annotations

from triage.evaluation.aggregate import Estimate, bootstrap_plan, score_system
from triage.evaluation.evaluate import Leaderboard, SystemRow
from triage.evaluation.leaderboard import (
    CSV_COLUMNS,
    fmt_estimate,
    indicator_table,
    main_table,
    render_csv,
    render_markdown,
    to_plain,
)
from triage.evaluation.stmt_metrics import (
    PackageResult,
    PackageTruth,
    Predicted,
    TruthStatement,
)

RUN, EVAL = "code_execution_runtime", "code_execution_dynamic_evaluation"
TRUTHS = (
    PackageTruth("a", "c1", True, (TruthStatement("s.py", 1, 1, (RUN,)),
                                   TruthStatement("s.py", 2, 2, (EVAL,))),
                 {"s.py": ((1, 1), (2, 2), (3, 3))}),
    PackageTruth("b", "b", False),
)


def board() -> Leaderboard:
    results = {"a": PackageResult("a", "malicious", (Predicted("s.py", 1, 1, RUN),
                                                      Predicted("s.py", 3, 3, RUN))),
               "b": PackageResult("b", "benign")}
    scores = score_system("static", TRUTHS, results, lambda i: "t", bootstrap_plan(TRUTHS, 0))
    rows = (
        SystemRow("static", "static", "static", "ran", 2, 2, 0, scores, 0.25, 0.2),
        SystemRow("llm:local", "llm", "local", "not run here: no server", 0, 2, 0, None),
    )
    return Leaderboard("run", "dev", 2, 1, 1, 2, 1, rows, 0, 1)


def test_fmt_estimate():
    assert fmt_estimate(Estimate(None)) == "n/a"
    assert fmt_estimate(Estimate(0.5)) == "0.50"
    assert fmt_estimate(Estimate(0.5, 0.25, 0.755)) == "0.50 [0.25, 0.76]"


def test_main_table_rows():
    assert main_table(board()).splitlines()[2:] == [
        "| static | 0.50 | 0.50 | 0.50 | 1.00 | 0.00 | 0.25 | - | - | 2/2 | ran |",
        "| llm:local | - | - | - | - | - | - | - | - | 0/2 | not run here: no server |",
    ]


def test_indicator_table_gives_zero_f1_for_a_missed_indicator():
    assert indicator_table(board()).splitlines()[2:] == [
        f"| `{EVAL}` | 1 | 0.00 |",
        f"| `{RUN}` | 1 | 0.67 |",
    ]


def test_csv_has_one_row_per_system_with_empty_cells_when_not_run():
    lines = render_csv(board()).splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS)
    assert lines[1].startswith("static,static,static,ran,2,2,0,0.5000,,,0.5000,,,0.5000,,,")
    assert lines[2] == "llm:local,llm,local,not run here: no server,0,2,0" + "," * (
        len(CSV_COLUMNS) - 7)


def test_markdown_says_why_a_model_has_no_numbers():
    md = render_markdown(board(), command="python eval/make_results.py")
    assert "```\npython eval/make_results.py\n```" in md
    assert ("- `llm:local` has no numbers: not run here: no server. Nothing is estimated in"
            " its place;") in md


def test_to_plain_is_json_ready():
    plain = to_plain(board())
    assert plain["rows"][0]["scores"]["code"]["metrics"]["f1"]["weighted"] == {
        "value": 0.5, "low": None, "high": None}
    assert plain["rows"][1]["scores"] is None
