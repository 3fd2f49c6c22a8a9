"""The `multiworker` marker: tests that start a 2-worker cluster on this machine. A plain `pytest`
skips them; `make test-dist` (`pytest -m multiworker`) runs them."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "multiworker: a 2-worker MultiWorkerMirroredStrategy cluster (make test-dist)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="starts a 2-worker cluster: run it with make test-dist")
    for item in items:
        if "multiworker" in item.keywords:
            item.add_marker(skip)
