"""One exception family; the CLI maps each class to an exit code."""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error triage raises on purpose."""

    exit_code = 3


class UsageError(TriageError):
    """The user asked for something impossible (bad option, unknown format)."""

    exit_code = 2


class ArtifactError(TriageError):
    """The artifact could not be read, or was rejected as hostile (traversal, bomb, links)."""

    exit_code = 3


class FetchError(ArtifactError):
    """A package could not be fetched from the index, or its hash did not match."""


class TaxonomyError(TriageError):
    """kb/ data is invalid (unknown keys, duplicate or dangling IDs)."""

    exit_code = 2
