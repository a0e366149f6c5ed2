"""This repository's pyproject names the plugin's ini keys; with the plugin switched off
(`pytest -p no:bindconform`) pytest would warn that they are unknown, so they are
registered here, and only then."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if pluginmanager.has_plugin("bindconform"):
        return
    parser.addini("bindconform_cases", "(pytest-bindconform is off)", type="paths", default=[])
