"""Personas shared by every test: an owner, another user and a staff member."""

import pytest

from generations.tests.factories import UserFactory
from tests.tiers import empty_test_bucket


@pytest.fixture(autouse=True)
def _empty_media_storage():
    """Each test starts with an empty bucket: objects outlive the database rollback."""
    yield
    empty_test_bucket()


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_user(db):
    return UserFactory(username="other")


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True)
