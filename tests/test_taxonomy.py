"""Tests for kb/taxonomy.yaml, its loader and the generated docs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.errors import TaxonomyError
from triage.taxonomy import Taxonomy, kb_dir, load_taxonomy
from triage.taxonomy_docs import render_taxonomy_markdown

REPO = Path(__file__).resolve().parent.parent

# The 36 IDs used in the first author's public annotations (taxonomy-sources.md, section 2).
OBSERVED_IDS = frozenset(
    {
        "code_accessing_server_with_suspicious_domain",
        "code_download_executable_or_binary_file",
        "code_download_payload",
        "code_download_script_file",
        "code_establishing_reverse_shell",
        "code_execution_decryption",
        "code_execution_dynamic_evaluation",
        "code_execution_encoded_command",
        "code_execution_environment_specific",
        "code_execution_executable_file",
        "code_execution_install",
        "code_execution_install_dynamic_package",
        "code_execution_install_hook_override",
        "code_execution_runtime",
        "code_execution_script_file",
        "code_execution_shell_command",
        "code_execution_silent",
        "code_execution_subprocess_hidden",
        "code_exfiltration_data",
        "code_exfiltration_file",
        "code_exfiltration_to_malicious_domain",
        "code_obfuscation",
        "code_obfuscation_encoding",
        "code_obfuscation_encryption",
        "code_read_system_and_user_info",
        "code_remove_file",
        "code_rename_file_extension",
        "code_suppressing_error",
        "code_write_to_disk",
        "metadata_author_email_suspicious",
        "metadata_author_info_suspicious",
        "metadata_author_reputation_notorious",
        "metadata_dependency_suspicious",
        "metadata_description_anomaly",
        "metadata_description_none",
        "metadata_description_purpose_mismatch",
    }
)

CORE_BY_TYPE = {
    "execution_stage": (
        "code_execution_runtime",
        "code_execution_install",
        "code_execution_install_hook_override",
    ),
    "execution_mechanism": (
        "code_execution_dynamic_evaluation",
        "code_execution_encoded_command",
        "code_execution_decryption",
        "code_execution_environment_specific",
        "code_execution_executable_file",
        "code_execution_subprocess_hidden",
        "code_execution_silent",
        "code_execution_import_dynamic_module",
        "code_execution_install_dynamic_package",
        "code_execution_script_file",
        "code_execution_shell_command",
    ),
    "exfiltration": (
        "code_exfiltration_data",
        "code_exfiltration_file",
        "code_exfiltration_dns",
        "code_exfiltration_webhook",
        "code_exfiltration_to_malicious_domain",
    ),
    "system_impact": (
        "code_read_system_and_user_info",
        "code_remove_file",
        "code_rename_file_extension",
        "code_write_to_disk",
        "code_persistence_startup",
        "code_read_crypto_wallet",
        "code_enumerate_directory",
    ),
    "network_operations": (
        "code_accessing_server_with_suspicious_domain",
        "code_download_executable_or_binary_file",
        "code_download_payload",
        "code_download_script_file",
        "code_establishing_reverse_shell",
        "code_geolocation_lookup",
        "code_connect_mining_pool",
    ),
    "defense_evasion": (
        "code_obfuscation",
        "code_obfuscation_encoding",
        "code_obfuscation_encryption",
        "code_obfuscation_computational",
        "code_suppressing_error",
    ),
    "metadata_manipulation": (
        "metadata_author_email_suspicious",
        "metadata_author_info_suspicious",
        "metadata_author_reputation_notorious",
        "metadata_dependency_suspicious",
        "metadata_description_anomaly",
        "metadata_description_none",
        "metadata_description_purpose_mismatch",
        "metadata_typosquatting",
        "metadata_combosquatting",
    ),
}

EXTENSIONS = {
    "code_read_credentials": "system_impact",
    "code_move_file": "system_impact",
    "code_modify_environment": "system_impact",
    "code_write_sensitive_path": "system_impact",
    "code_disable_tls_verification": "network_operations",
    "code_obfuscation_whitespace": "defense_evasion",
    "metadata_version_suspicious": "metadata_manipulation",
    "metadata_decoy_functionality": "metadata_manipulation",
    "code_execution_startup_hook": "execution_stage",
    "code_prompt_injection": "defense_evasion",
}


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


@pytest.fixture()
def raw() -> dict[str, Any]:
    return yaml.safe_load((REPO / "kb" / "taxonomy.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _index(data: dict[str, Any], indicator_id: str) -> int:
    return next(i for i, ind in enumerate(data["indicators"]) if ind["id"] == indicator_id)


# --------------------------------------------------------------------------- the real file


def test_types_in_order(tax: Taxonomy) -> None:
    assert [(t.order, t.id, t.name) for t in tax.types] == [
        (1, "execution_stage", "Execution Stage"),
        (2, "execution_mechanism", "Execution Mechanism"),
        (3, "exfiltration", "Exfiltration"),
        (4, "system_impact", "System Impact"),
        (5, "network_operations", "Network Operations"),
        (6, "defense_evasion", "Defense Evasion"),
        (7, "metadata_manipulation", "Metadata Manipulation"),
    ]


def test_core_indicators_per_type(tax: Taxonomy) -> None:
    core = tax.core()
    assert len(core) == 47
    got = {t.id: tuple(i.id for i in core if i.type == t.id) for t in tax.types}
    assert got == CORE_BY_TYPE


def test_extensions(tax: Taxonomy) -> None:
    ext = {i.id: i.type for i in tax.indicators if i.extension}
    assert ext == EXTENSIONS
    assert not any(tax.get(i).observed for i in EXTENSIONS)


def test_observed_ids_verbatim(tax: Taxonomy) -> None:
    assert len(OBSERVED_IDS) == 36
    assert {i.id for i in tax.indicators if i.observed} == OBSERVED_IDS
    assert all(not tax.get(i).extension for i in OBSERVED_IDS)


def test_every_id_in_exactly_one_type(tax: Taxonomy) -> None:
    ids = [i.id for i in tax.indicators]
    assert len(ids) == len(set(ids)) == 57
    type_ids = {t.id for t in tax.types}
    for ind in tax.indicators:
        assert ind.type in type_ids
        assert ind.type_name == tax.type_of(ind.id).name


def test_fields_are_filled(tax: Taxonomy) -> None:
    for ind in tax.indicators:
        assert ind.name and ind.definition and ind.benign_contrast, ind.id
        assert ind.attack and isinstance(ind.attack, tuple), ind.id
        assert ind.severity in {"low", "medium", "high", "critical"}, ind.id


def test_lookup_api(tax: Taxonomy) -> None:
    ind = tax.get("code_execution_encoded_command")
    assert (ind.type, ind.type_name, ind.cwe, ind.severity) == (
        "execution_mechanism",
        "Execution Mechanism",
        "CWE-506",
        "critical",
    )
    assert tax.get("code_suppressing_error").cwe == "CWE-912"
    assert tax.get("code_execution_startup_hook").attack == ("T1546.018",)
    assert tax.type_of("metadata_typosquatting").id == "metadata_manipulation"
    assert "code_obfuscation" in tax
    assert "code_nonexistent" not in tax
    assert 42 not in tax
    with pytest.raises(KeyError, match="unknown indicator ID 'code_nonexistent'"):
        tax.get("code_nonexistent")
    with pytest.raises(KeyError, match="unknown indicator ID 'nope'"):
        tax.type_of("nope")


def test_default_load_is_cached_and_kb_dir(tax: Taxonomy) -> None:
    assert load_taxonomy() is tax
    assert kb_dir() == REPO / "kb"
    assert load_taxonomy(REPO / "kb" / "taxonomy.yaml") == tax


def test_records_are_frozen(tax: Taxonomy) -> None:
    with pytest.raises(AttributeError):
        tax.indicators[0].severity = "low"  # type: ignore[misc]


# --------------------------------------------------------------------------- invalid files


def test_unknown_indicator_key(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["colour"] = "red"
    with pytest.raises(
        TaxonomyError,
        match=r"unknown key 'colour' in indicators\[\d+\] "
        r"\(code_remove_file\)",
    ):
        load_taxonomy(_write(tmp_path, raw))


def test_unknown_top_level_key(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["extra"] = 1
    with pytest.raises(TaxonomyError, match="unknown key 'extra' in top level"):
        load_taxonomy(_write(tmp_path, raw))


def test_missing_key(tmp_path: Path, raw: dict[str, Any]) -> None:
    del raw["indicators"][0]["cwe"]
    with pytest.raises(
        TaxonomyError,
        match=r"missing key 'cwe' in indicators\[0\] "
        r"\(code_execution_runtime\)",
    ):
        load_taxonomy(_write(tmp_path, raw))


def test_duplicate_id(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"].append(copy.deepcopy(raw["indicators"][0]))
    with pytest.raises(TaxonomyError, match="duplicate indicator ID.s.: code_execution_runtime$"):
        load_taxonomy(_write(tmp_path, raw))


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text('version: "1"\nversion: "2"\n', encoding="utf-8")
    with pytest.raises(TaxonomyError, match="invalid YAML: .*duplicate key 'version'"):
        load_taxonomy(path)


def test_dangling_type(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["type"] = "system_damage"
    with pytest.raises(
        TaxonomyError, match="indicator code_remove_file has unknown type 'system_damage'"
    ):
        load_taxonomy(_write(tmp_path, raw))


def test_bad_severity(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["severity"] = "severe"
    with pytest.raises(
        TaxonomyError,
        match=r"indicators\[\d+\] \(code_remove_file\): severity: invalid severity 'severe'; "
        "expected one of low, medium, high, critical",
    ):
        load_taxonomy(_write(tmp_path, raw))


@pytest.mark.parametrize("bad_id", ["codeRemoveFile", "remove_file", "code_Remove", "code__x"])
def test_bad_id_form(tmp_path: Path, raw: dict[str, Any], bad_id: str) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["id"] = bad_id
    with pytest.raises(
        TaxonomyError,
        match=f"indicator ID '{bad_id}' must be snake_case and start with code_ or metadata_",
    ):
        load_taxonomy(_write(tmp_path, raw))


def test_core_count(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["extension"] = True
    raw["indicators"][_index(raw, "code_remove_file")]["observed"] = False
    with pytest.raises(
        TaxonomyError, match=r"expected exactly 47 core \(non-extension\) indicators, found 46"
    ):
        load_taxonomy(_write(tmp_path, raw))


def test_type_count(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["types"].append({"id": "misc", "name": "Misc", "description": "x", "order": 8})
    with pytest.raises(TaxonomyError, match="expected exactly 7 types, found 8"):
        load_taxonomy(_write(tmp_path, raw))


def test_metadata_prefix_matches_type(tmp_path: Path, raw: dict[str, Any]) -> None:
    raw["indicators"][_index(raw, "code_remove_file")]["type"] = "metadata_manipulation"
    with pytest.raises(TaxonomyError, match="indicator code_remove_file: metadata_ IDs belong"):
        load_taxonomy(_write(tmp_path, raw))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read taxonomy"):
        load_taxonomy(tmp_path / "absent.yaml")


# --------------------------------------------------------------------------- docs


def test_docs_up_to_date(tax: Taxonomy) -> None:
    expected = render_taxonomy_markdown(tax)
    actual = (REPO / "docs" / "taxonomy.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/taxonomy.md is stale: run python -m triage.taxonomy_docs"


def test_docs_rows(tax: Taxonomy) -> None:
    text = render_taxonomy_markdown(tax)
    assert "## 7. Metadata Manipulation (`metadata_manipulation`)" in text
    assert (
        "| `code_obfuscation_whitespace` (ext.) | Whitespace hiding | high | T1027, T1564 |"
        " CWE-912 |" in text
    )
    assert text.count("| `") == len(tax.indicators)
