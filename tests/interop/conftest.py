"""Which algorithms run: SEKISHO_INTEROP_ALGORITHMS (default every one). Tests of the others
are deselected, and say so in pytest's summary; they are never skipped."""
import os

import pytest

DEFAULT_ALGORITHMS = "HS256 EdDSA ES256 RS256"


def requested_algorithms() -> list[str]:
    raw = os.environ.get("SEKISHO_INTEROP_ALGORITHMS", DEFAULT_ALGORITHMS)
    return raw.replace(",", " ").split()


def pytest_report_header(config):
    return f"algorithms: {' '.join(requested_algorithms())} (SEKISHO_INTEROP_ALGORITHMS)"


def pytest_collection_modifyitems(config, items):
    want = requested_algorithms()
    if not want:
        raise pytest.UsageError("SEKISHO_INTEROP_ALGORITHMS is empty")
    known = {
        item.callspec.params["alg"]
        for item in items
        if hasattr(item, "callspec") and "alg" in item.callspec.params
    }
    unknown = sorted(set(want) - known)
    if unknown:
        raise pytest.UsageError(
            f"SEKISHO_INTEROP_ALGORITHMS: unknown {' '.join(unknown)} (known: {' '.join(sorted(known))})"
        )
    keep, drop = [], []
    for item in items:
        alg = getattr(item, "callspec", None) and item.callspec.params.get("alg")
        (keep if alg is None or alg in want else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
