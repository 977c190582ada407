"""Aliases of free-text labels, and label loading (the label file is plain text, not malware)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage.errors import TaxonomyError
from triage.evaluation.corpus import Label, load_clusters, load_labels
from triage.evaluation.labels import (
    is_taxonomy_id,
    load_aliases,
    parse_aliases,
    resolve_indicator,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
LABELS = CORPUS / "labels-dev.jsonl"
needs_corpus = pytest.mark.skipif(
    not LABELS.is_file(), reason=f"dev corpus labels not found at {LABELS} (shared/ beside repo)"
)

# The label vocabulary the aliases may target (taxonomy-sources.md sections 2 and 3a).
VALID_IDS = frozenset(
    """
    code_execution_runtime code_execution_install code_execution_install_hook_override
    code_execution_dynamic_evaluation code_execution_encoded_command code_execution_decryption
    code_execution_environment_specific code_execution_executable_file
    code_execution_subprocess_hidden code_execution_silent code_execution_import_dynamic_module
    code_execution_install_dynamic_package code_execution_script_file
    code_execution_shell_command code_exfiltration_data code_exfiltration_file
    code_exfiltration_dns code_exfiltration_webhook code_exfiltration_to_malicious_domain
    code_read_system_and_user_info code_remove_file code_rename_file_extension
    code_write_to_disk code_persistence_startup code_read_crypto_wallet
    code_enumerate_directory code_accessing_server_with_suspicious_domain
    code_download_executable_or_binary_file code_download_payload code_download_script_file
    code_establishing_reverse_shell code_geolocation_lookup code_connect_mining_pool
    code_obfuscation code_obfuscation_encoding code_obfuscation_encryption
    code_obfuscation_computational code_suppressing_error metadata_author_email_suspicious
    metadata_author_info_suspicious metadata_author_reputation_notorious
    metadata_dependency_suspicious metadata_description_anomaly metadata_description_none
    metadata_description_purpose_mismatch metadata_typosquatting metadata_combosquatting
    """.split()
)


def _raw_indicators() -> set[str]:
    with open(LABELS, encoding="utf-8") as fh:
        return {json.loads(line)["indicator"] for line in fh if line.strip()}


@needs_corpus
def test_every_free_text_label_has_a_valid_alias():
    aliases = load_aliases(valid_ids=VALID_IDS)
    free = {raw for raw in _raw_indicators() if not is_taxonomy_id(raw)}
    assert len(free) == 32
    assert sorted(free - set(aliases)) == []
    assert sorted(set(aliases) - free) == []  # no stale aliases
    for raw in free:
        assert set(resolve_indicator(raw, aliases)) <= VALID_IDS, raw


@needs_corpus
def test_snake_case_labels_are_valid_ids():
    ids = {raw for raw in _raw_indicators() if is_taxonomy_id(raw)}
    assert sorted(ids - VALID_IDS) == []


def test_alias_ids_exist_in_taxonomy():
    taxonomy = pytest.importorskip("triage.taxonomy").load_taxonomy()
    aliases = load_aliases()
    assert sorted({i for ids in aliases.values() for i in ids if i not in taxonomy}) == []


def test_selected_alias_decisions():
    aliases = load_aliases()
    assert aliases["Hidden Powershell Execution"] == ("code_execution_subprocess_hidden",)
    assert aliases["Known Malicious Author"] == ("metadata_author_reputation_notorious",)
    assert aliases["Fake Package Meta Data"] == ("metadata_description_purpose_mismatch",)
    assert aliases["Suspicious package metadata like description, author and author_email"] == (
        "metadata_description_anomaly",
        "metadata_author_info_suspicious",
    )


@needs_corpus
def test_load_real_labels():
    labels = load_labels(LABELS, load_aliases())
    first = labels[0]
    assert first == Label(
        package="py-crd",
        archive="py-crd/1.0.0/py-crd-1.0.0.tar.gz",
        file="py-crd-1.0.0/setup.py",
        lines=(11, 12, 13, 14, 15, 16, 17, 18),
        indicator="code_execution_install_hook_override",
        raw_indicator="Arbitrary code execution during installation by overriding run() method",
        is_metadata=False,
    )
    assert len({label.archive for label in labels}) == 77
    assert all(label.is_metadata == label.indicator.startswith("metadata_") for label in labels)
    clusters = load_clusters(CORPUS / "packages-dev.csv")
    assert len(clusters) == 238
    assert {label.archive for label in labels} <= set(clusters)


def test_parse_aliases_rejects_bad_input():
    with pytest.raises(TaxonomyError, match="invalid alias file"):
        parse_aliases("aliases: {}\nextra: 1\n")
    with pytest.raises(TaxonomyError, match="not a taxonomy ID"):
        parse_aliases('aliases: {"Some text": "Not An Id"}\n')
    with pytest.raises(TaxonomyError, match="empty list"):
        parse_aliases('aliases: {"Some text": []}\n')
    with pytest.raises(TaxonomyError, match=r"unknown IDs \['code_made_up'\]"):
        parse_aliases('aliases: {"t": [code_made_up]}\n', valid_ids={"code_obfuscation"})
    with pytest.raises(TaxonomyError, match="invalid alias file"):
        parse_aliases("aliases: [unclosed\n")


def test_load_labels_expands_lists_and_rejects_unknown_text(tmp_path: Path):
    aliases = parse_aliases('aliases: {"Two things": [code_obfuscation, code_execution_runtime]}\n')
    rows = [
        {"package": "p", "archive": "p/1/p-1.tar.gz", "file": "p-1/setup.py", "lines": [3],
         "indicator": "Two things", "note": ""},
        {"package": "p", "archive": "p/1/p-1.tar.gz", "file": "p-1/setup.py", "lines": [9, 10],
         "indicator": "metadata_author_info_suspicious", "note": ""},
        {"package": "p", "archive": "p/1/p-1.tar.gz", "file": "p-1/setup.py", "lines": [3],
         "indicator": "code_obfuscation", "note": "duplicate of an expanded alias"},
    ]  # fmt: skip
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    labels = load_labels(path, aliases)
    assert [(lb.lines, lb.indicator, lb.raw_indicator, lb.is_metadata) for lb in labels] == [
        ((3,), "code_obfuscation", "Two things", False),
        ((3,), "code_execution_runtime", "Two things", False),
        ((9, 10), "metadata_author_info_suspicious", "metadata_author_info_suspicious", True),
    ]
    path.write_text(json.dumps({**rows[0], "indicator": "Unknown text"}) + "\n")
    with pytest.raises(TaxonomyError, match="no alias for free-text indicator 'Unknown text'"):
        load_labels(path, aliases)
