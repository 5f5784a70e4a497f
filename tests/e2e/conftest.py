from pathlib import Path

import pytest

from tests.helpers import mark_tests


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here runs real worker processes: `e2e`, which `make test-fast` leaves out.
    First, so that `-m` sees the marker."""
    mark_tests(items, pytest.mark.e2e, folder=Path(__file__).parent)
