"""Personas shared by every test: an owner, another user and a staff member."""

import shutil

import pytest
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, storages

from generations.tests.factories import UserFactory
from tests.tiers import empty_test_bucket


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
