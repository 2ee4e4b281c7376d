"""The public API is pinned, and every hook is documented and tested."""

from __future__ import annotations

import inspect
from pathlib import Path

import naturalead_sync
from naturalead_sync import hookspecs

TESTS = Path(__file__).resolve().parents[1]


def test_public_names_are_pinned() -> None:
    assert naturalead_sync.__all__ == [
        "AuthError",
        "BudgetExhausted",
        "ConfigError",
        "ConnectionReport",
        "Connector",
        "ConnectorContext",
        "ConnectorError",
        "ConnectorSettings",
        "DestinationError",
        "Lead",
        "MassDeleteBlocked",
        "NaturaleadSyncError",
        "RecordError",
        "Rejection",
        "RunOptions",
        "RunReport",
        "SkipLead",
        "SourceRecord",
        "StateError",
        "StateLocked",
        "TokenRefresher",
        "TokenResponse",
        "TransientError",
        "Window",
        "__version__",
        "hookimpl",
        "load_config",
        "sync",
    ]
    for name in naturalead_sync.__all__:
        assert hasattr(naturalead_sync, name), name


def _hookspecs() -> list[str]:
    return [
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "naturalead_sync_spec")
    ]


def test_there_are_hooks_to_check() -> None:
    assert set(_hookspecs()) >= {"register_connectors", "transform_lead", "run_finished"}


def test_every_hook_has_a_docstring_and_full_annotations() -> None:
    for name in _hookspecs():
        function = getattr(hookspecs, name)
        doc = inspect.getdoc(function) or ""
        assert len(doc.split()) >= 20, f"hook {name} needs a docstring saying when and what"
        assert "Called" in doc, f"hook {name}: say when it is called"
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty, name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)


def test_every_hook_has_a_test() -> None:
    sources = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py"))
    for name in _hookspecs():
        assert f"def test_hook_{name}" in sources, f"hook {name} has no test_hook_{name}"


def test_every_public_class_has_a_docstring() -> None:
    for name in naturalead_sync.__all__:
        value = getattr(naturalead_sync, name)
        if inspect.isclass(value):
            assert inspect.getdoc(value), name
