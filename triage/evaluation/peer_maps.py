"""Peer tool rule IDs -> our nearest taxonomy ID, where a sensible mapping exists.

A rule without an entry keeps its own ID (``bandit:B404``, ``guarddog:capability-...``): it
still counts for statement detection (as a ``code`` finding) but never matches an indicator.
"""

from __future__ import annotations

from types import MappingProxyType

BANDIT = MappingProxyType(
    {
        "B102": "code_execution_dynamic_evaluation",  # exec
        "B307": "code_execution_dynamic_evaluation",  # eval
        "B602": "code_execution_shell_command",  # subprocess with shell=True
        "B605": "code_execution_shell_command",  # os.system / os.popen
        "B607": "code_execution_shell_command",  # process started with a partial path
        "B606": "code_execution_executable_file",  # os.exec*/spawn* without a shell
        "B110": "code_suppressing_error",  # try/except/pass
        "B112": "code_suppressing_error",  # try/except/continue
        "B501": "code_disable_tls_verification",  # requests verify=False
        "B323": "code_disable_tls_verification",  # ssl._create_unverified_context
    }
)
"""Bandit test ID -> taxonomy ID."""

GUARDDOG = MappingProxyType(
    {
        "threat-runtime-obfuscation-base64exec": "code_execution_encoded_command",
        "threat-process-powershell-encoded": "code_execution_encoded_command",
        "threat-runtime-obfuscation-chr": "code_execution_encoded_command",
        "threat-runtime-obfuscation-dynamic-eval": "code_execution_dynamic_evaluation",
        "threat-runtime-obfuscation": "code_obfuscation",
        "threat-runtime-obfuscation-general": "code_obfuscation",
        "threat-runtime-obfuscation-api": "code_obfuscation",
        "threat-runtime-obfuscation-unicode": "code_obfuscation",
        "threat-runtime-obfuscation-hidden-code": "code_obfuscation_whitespace",
        "threat-runtime-obfuscation-pyarmor": "code_obfuscation_encryption",
        "threat-runtime-obfuscation-import-exec": "code_execution_import_dynamic_module",
        "threat-runtime-dynamic-loader": "code_execution_import_dynamic_module",
        "threat-runtime-obfuscation-log-suppress": "code_suppressing_error",
        "threat-process-download-exec": "code_download_payload",
        "capability-network-download": "code_download_payload",
        "threat-process-spawn-silent": "code_execution_subprocess_hidden",
        "threat-process-hooks": "code_execution_install_hook_override",
        "capability-process-hooks": "code_execution_install_hook_override",
        "threat-process-cryptomining": "code_connect_mining_pool",
        "threat-runtime-system-info": "code_read_system_and_user_info",
        "threat-network-exfil-sysinfo": "code_exfiltration_data",
        "threat-network-exfil-messenger": "code_exfiltration_webhook",
        "threat-network-exfiltration": "code_exfiltration_to_malicious_domain",
        "threat-network-dns-exfil": "code_exfiltration_dns",
        "threat-network-reverse-shell": "code_establishing_reverse_shell",
        "threat-network-outbound-shady-links": "code_accessing_server_with_suspicious_domain",
        "threat-filesystem-autostart": "code_persistence_startup",
        "capability-process-schedule": "code_persistence_startup",
        "threat-filesystem-destruction": "code_remove_file",
        "capability-filesystem-delete": "code_remove_file",
        "threat-filesystem-read": "code_read_credentials",
        "capability-filesystem-browser": "code_read_credentials",
        "threat-runtime-environment-read": "code_read_credentials",
        "capability-filesystem-write-executable": "code_write_to_disk",
        "threat-runtime-enumeration": "code_enumerate_directory",
        "typosquatting": "metadata_typosquatting",
        "deceptive_author": "metadata_author_info_suspicious",
        "potentially_compromised_email_domain": "metadata_author_email_suspicious",
        "unclaimed_maintainer_email_domain": "metadata_author_email_suspicious",
    }
)
"""GuardDog rule name -> taxonomy ID."""


def bandit_indicator(test_id: str) -> str:
    """Taxonomy ID for a bandit test, else ``bandit:<test_id>``."""
    return BANDIT.get(test_id, f"bandit:{test_id}")


def guarddog_indicator(rule: str) -> str:
    """Taxonomy ID for a GuardDog rule, else ``guarddog:<rule>``."""
    return GUARDDOG.get(rule, f"guarddog:{rule}")
