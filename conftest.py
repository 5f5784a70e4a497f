"""Personas shared by every test: an owner, another user and a staff member, and test
clients signed in as them."""

import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, storages

from generations.tests.factories import UserFactory
from tests.helpers import mark_tests, signed_in
from tests.tiers import empty_test_bucket

# Its assertions (the counter checks) report their values like a test's own. Registered
# here, before a test module of any folder can import it.
pytest.register_assert_rewrite("generations.tests.pipeline_helpers")

# Tests of the apps that take more than about 2 s, by name ("<path>::<function>"), so that
# their modules need no marker of their own. The tests/ folder marks its own.
SLOW_TESTS = {
    "storage/tests/test_services.py::test_local_url_stops_working_after_it_expires",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark SLOW_TESTS `slow` (`make test-fast` leaves them out), before `-m` looks."""
    mark_tests(items, pytest.mark.slow, folder=Path(__file__).parent, only=SLOW_TESTS)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counts live in the cache; each test starts with none."""
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas and factories hash passwords; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_media_storage():
    """Each test starts with empty media storage: objects outlive the database rollback."""
    yield
    empty_test_bucket()
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        shutil.rmtree(storage.location, ignore_errors=True)


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_user(db):
    return UserFactory(username="other")


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True)


@pytest.fixture
def owner_client(owner):
    return signed_in(owner)


@pytest.fixture
def other_client(other_user):
    return signed_in(other_user)
