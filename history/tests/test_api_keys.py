import hashlib
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from history.authentication import ApiKeyAuthentication
from history.models import ApiKey
from history.selectors import api_key_get, api_keys_of
from history.services import (
    MAX_ACTIVE_KEYS,
    _record_use,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)

pytestmark = pytest.mark.django_db

KEY_FORMAT = re.compile(r"^gv_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$")
LIST_URL = "/api/keys/"
INVALID = re.escape("Invalid or revoked API key.")


def detail_url(api_key: ApiKey) -> str:
    return f"{LIST_URL}{api_key.pk}/"


def stored_values(api_key: ApiKey) -> list[str]:
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    return [str(value) for value in row.values()]


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def owner_key(owner):
    return api_key_create(user=owner, name="laptop")


# Services -----------------------------------------------------------------------------


def test_create_returns_the_raw_key_once_and_stores_only_its_digest(owner):
    api_key, raw_key = api_key_create(user=owner, name="CI pipeline")

    assert KEY_FORMAT.match(raw_key)
    assert raw_key.split("_")[1] == api_key.prefix
    assert api_key.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    secret = raw_key.split("_", 2)[2]
    assert not any(secret in value for value in stored_values(api_key))
    assert api_key.is_active
    assert api_key.last_used_at is None


def test_each_key_is_different(owner):
    keys = [api_key_create(user=owner, name=f"key {n}")[1] for n in range(5)]

    assert len(set(keys)) == 5
    assert len({key.split("_")[1] for key in keys}) == 5


def test_create_strips_the_name(owner):
    api_key, _ = api_key_create(user=owner, name="  deploy bot \n")

    assert api_key.name == "deploy bot"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_refuses_a_blank_or_long_name(owner, name):
    with pytest.raises(ValidationError) as error:
        api_key_create(user=owner, name=name)

    assert list(error.value.message_dict) == ["name"]
    assert not ApiKey.objects.exists()


def test_create_accepts_a_name_of_100_characters(owner):
    api_key, _ = api_key_create(user=owner, name="x" * 100)

    assert len(api_key.name) == 100


def test_create_refuses_a_name_already_used_by_an_active_key(owner, owner_key):
    with pytest.raises(ValidationError) as error:
        api_key_create(user=owner, name=" laptop ")

    assert "already have an active key" in error.value.message_dict["name"][0]
    assert ApiKey.objects.count() == 1


def test_a_revoked_keys_name_can_be_used_again(owner, owner_key):
    api_key_revoke(api_key=owner_key[0])

    api_key, _ = api_key_create(user=owner, name="laptop")

    assert api_key.is_active
    assert ApiKey.objects.filter(user=owner, name="laptop").count() == 2


def test_names_are_unique_per_user_only(owner_key, other_user):
    api_key, _ = api_key_create(user=other_user, name="laptop")

    assert api_key.user == other_user


def test_the_database_refuses_two_active_keys_with_one_name(owner, owner_key):
    with pytest.raises(IntegrityError):
        ApiKey.objects.create(user=owner, name="laptop", prefix="0000ffff", key_hash="0" * 64)


def test_create_refuses_more_active_keys_than_the_cap(owner):
    keys = [api_key_create(user=owner, name=f"key {n}")[0] for n in range(MAX_ACTIVE_KEYS)]

    with pytest.raises(ValidationError) as error:
        api_key_create(user=owner, name="one too many")
    assert f"{MAX_ACTIVE_KEYS} active keys" in error.value.message_dict["name"][0]

    api_key_revoke(api_key=keys[0])
    api_key, _ = api_key_create(user=owner, name="one too many")
    assert api_key.is_active


def test_revoke_sets_revoked_at_and_a_second_revoke_changes_nothing(owner_key):
    api_key = api_key_revoke(api_key=owner_key[0])
    first = api_key.revoked_at

    again = api_key_revoke(api_key=ApiKey.objects.get(pk=api_key.pk))

    assert first is not None
    assert not api_key.is_active
    assert again.revoked_at == first


def test_authenticate_returns_the_key_with_its_user(owner, owner_key):
    api_key, raw_key = owner_key

    found = api_key_authenticate(raw_key)

    assert found == api_key
    assert found.user == owner


def test_authenticate_refuses_a_wrong_secret_for_a_known_prefix(owner_key):
    api_key, raw_key = owner_key
    wrong = f"gv_{api_key.prefix}_{'A' * 43}"

    assert api_key_authenticate(wrong) is None
    assert api_key_authenticate(raw_key + "x") is None


def test_authenticate_refuses_an_unknown_key(owner_key):
    assert api_key_authenticate(f"gv_{'0' * 8}_{'A' * 43}") is None


@pytest.mark.parametrize(
    "raw_key",
    [
        "",
        "gv_",
        "gv_0123abcd",
        "gv_0123abcd_",
        "gv_0123ABCD_secret",
        "gv_0123abc_secret",
        "xx_0123abcd_secret",
        "0123abcd",
        "gv__0123abcd_secret",
    ],
)
def test_authenticate_refuses_a_malformed_key(owner_key, raw_key, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api_key_authenticate(raw_key) is None


def test_authenticate_refuses_a_revoked_key(owner_key):
    api_key, raw_key = owner_key
    api_key_revoke(api_key=api_key)

    assert api_key_authenticate(raw_key) is None


def test_authenticate_refuses_a_key_of_an_inactive_user(owner, owner_key):
    owner.is_active = False
    owner.save(update_fields=["is_active"])

    assert api_key_authenticate(owner_key[1]) is None


def test_authenticate_records_last_use(owner_key):
    api_key, raw_key = owner_key
    before = timezone.now()

    found = api_key_authenticate(raw_key)

    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert api_key.last_used_at >= before
    assert found is not None
    assert found.last_used_at == api_key.last_used_at


def test_authenticate_writes_last_use_at_most_once_a_minute(owner_key, django_assert_num_queries):
    api_key, raw_key = owner_key
    api_key_authenticate(raw_key)
    api_key.refresh_from_db()
    first_use = api_key.last_used_at

    with django_assert_num_queries(1):  # the lookup only, no write
        api_key_authenticate(raw_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at == first_use

    a_while_ago = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=a_while_ago)
    api_key_authenticate(raw_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at > a_while_ago + timedelta(seconds=60)


def test_a_recent_use_recorded_elsewhere_is_not_overwritten(owner_key):
    """Two processes holding the same stale row: the guarded update lets one write."""
    api_key, raw_key = owner_key
    stale = timezone.now() - timedelta(minutes=5)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)
    loaded = ApiKey.objects.get(pk=api_key.pk)
    api_key_authenticate(raw_key)  # another request records the use first
    recorded = ApiKey.objects.get(pk=api_key.pk).last_used_at

    _record_use(loaded)

    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == recorded
    assert loaded.last_used_at == stale


# Selectors ----------------------------------------------------------------------------


def test_keys_of_a_user_list_active_keys_first_then_revoked_ones(owner, other_user):
    old, _ = api_key_create(user=owner, name="old")
    revoked, _ = api_key_create(user=owner, name="revoked")
    new, _ = api_key_create(user=owner, name="new")
    api_key_create(user=other_user, name="theirs")
    api_key_revoke(api_key=revoked)

    assert list(api_keys_of(owner)) == [new, old, revoked]


def test_get_answers_does_not_exist_for_another_users_key(owner, other_user, owner_key):
    assert api_key_get(user=owner, key_id=owner_key[0].pk) == owner_key[0]
    with pytest.raises(ApiKey.DoesNotExist):
        api_key_get(user=other_user, key_id=owner_key[0].pk)


# Authentication class -----------------------------------------------------------------


def authenticate(authorization: str | None):
    factory = APIRequestFactory()
    if authorization is None:
        request = Request(factory.get("/"))
    else:
        request = Request(factory.get("/", HTTP_AUTHORIZATION=authorization))
    return ApiKeyAuthentication().authenticate(request)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Api-Key", "api-key"])
def test_authentication_accepts_bearer_and_api_key_schemes(owner, owner_key, scheme):
    api_key, raw_key = owner_key

    assert authenticate(f"{scheme} {raw_key}") == (owner, api_key)


@pytest.mark.parametrize("authorization", [None, "", "Basic b3duZXI6cGFzc3dvcmQ=", "Token abc"])
def test_authentication_leaves_other_requests_to_the_next_class(owner_key, authorization):
    assert authenticate(authorization) is None


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer gv_0123abcd_secret extra",
        "Bearer not-a-key",
        f"Bearer gv_{'0' * 8}_{'A' * 43}",
        "Api-Key gv_",
    ],
)
def test_authentication_fails_for_a_malformed_or_unknown_key(owner_key, authorization):
    with pytest.raises(AuthenticationFailed, match=INVALID):
        authenticate(authorization)


def test_authentication_fails_for_a_revoked_key(owner_key):
    api_key_revoke(api_key=owner_key[0])

    with pytest.raises(AuthenticationFailed, match=INVALID):
        authenticate(f"Bearer {owner_key[1]}")


def test_authentication_fails_for_an_inactive_user(owner, owner_key):
    owner.is_active = False
    owner.save(update_fields=["is_active"])

    with pytest.raises(AuthenticationFailed):
        authenticate(f"Bearer {owner_key[1]}")


def test_authentication_fails_for_a_non_ascii_key(owner_key):
    request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION="Bearer gv_é"))

    with pytest.raises(AuthenticationFailed):
        ApiKeyAuthentication().authenticate(request)


def test_the_schema_documents_the_bearer_scheme():
    schema = SchemaGenerator().get_schema(public=True)

    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "gv_...",
        "description": scheme["description"],
    }
    operations = schema["paths"]["/api/keys/"]
    assert {"ApiKeyAuth": []} in operations["get"]["security"]
    assert "key" in str(operations["post"]["responses"]["201"])


# Endpoints ----------------------------------------------------------------------------


def test_a_request_with_an_api_key_is_authenticated_as_its_user(api_client, owner_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_key[1]}")

    response = api_client.get(LIST_URL)

    assert response.status_code == 200
    assert [key["name"] for key in response.json()] == ["laptop"]


def test_an_anonymous_request_answers_401_with_a_bearer_challenge(api_client):
    response = api_client.get(LIST_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Bearer gv_nonsense", "Api-Key gv_0123abcd_x"])
def test_a_bad_key_answers_401(api_client, authorization):
    api_client.credentials(HTTP_AUTHORIZATION=authorization)

    response = api_client.get(LIST_URL)

    assert response.status_code == 401
    assert "Invalid or revoked API key." in response.content.decode()


def test_a_revoked_key_answers_401(api_client, owner_key):
    api_key_revoke(api_key=owner_key[0])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {owner_key[1]}")

    assert api_client.get(LIST_URL).status_code == 401


def test_a_session_user_can_manage_keys(api_client, owner, owner_key):
    api_client.force_login(owner)

    response = api_client.get(LIST_URL)

    assert response.status_code == 200
    assert len(response.json()) == 1


def test_list_shows_own_keys_without_secrets_in_one_query(
    api_client, owner, other_user, owner_key, django_assert_num_queries
):
    revoked, _ = api_key_create(user=owner, name="old laptop")
    api_key_revoke(api_key=revoked)
    api_key_create(user=other_user, name="theirs")
    api_client.force_authenticate(owner)

    with django_assert_num_queries(1):
        response = api_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert [key["name"] for key in body] == ["laptop", "old laptop"]
    assert set(body[0]) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "active",
    }
    assert body[0]["prefix"] == owner_key[0].prefix
    assert body[0]["active"] is True
    assert body[1]["active"] is False
    assert body[1]["revoked_at"] is not None
    assert owner_key[1] not in response.content.decode()
    assert owner_key[0].key_hash not in response.content.decode()


def test_create_answers_201_with_the_raw_key_shown_once(api_client, owner):
    api_client.force_authenticate(owner)

    response = api_client.post(LIST_URL, {"name": "CI pipeline"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "CI pipeline"
    assert body["active"] is True
    assert KEY_FORMAT.match(body["key"])
    api_key = ApiKey.objects.get(pk=body["id"])
    assert api_key.user == owner
    assert body["prefix"] == api_key.prefix
    secret = body["key"].split("_", 2)[2]
    assert not any(secret in value for value in stored_values(api_key))
    assert api_key_authenticate(body["key"]) == api_key

    listed = api_client.get(LIST_URL)
    assert "key" not in listed.json()[0]
    assert secret not in listed.content.decode()


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}])
def test_create_answers_400_for_a_missing_blank_or_long_name(api_client, owner, payload):
    api_client.force_authenticate(owner)

    response = api_client.post(LIST_URL, payload, format="json")

    assert response.status_code == 400
    assert "name" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_create_answers_400_for_a_duplicate_name(api_client, owner, owner_key):
    api_client.force_authenticate(owner)

    response = api_client.post(LIST_URL, {"name": "laptop"}, format="json")

    assert response.status_code == 400
    assert "already have an active key with this name" in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_delete_revokes_the_key(api_client, owner, owner_key):
    api_key, raw_key = owner_key
    api_client.force_authenticate(owner)

    response = api_client.delete(detail_url(api_key))

    assert response.status_code == 204
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api_key_authenticate(raw_key) is None
    assert api_client.get(LIST_URL).json()[0]["active"] is False
    assert api_client.delete(detail_url(api_key)).status_code == 204


def test_another_users_key_answers_404(api_client, other_user, owner_key):
    api_key = owner_key[0]
    api_client.force_authenticate(other_user)

    response = api_client.delete(detail_url(api_key))

    assert response.status_code == 404
    api_key.refresh_from_db()
    assert api_key.is_active
    assert api_client.get(LIST_URL).json() == []


@pytest.mark.parametrize("key_id", ["999999999", "abc"])
def test_an_unknown_key_id_answers_404(api_client, owner, key_id):
    api_client.force_authenticate(owner)

    assert api_client.delete(f"{LIST_URL}{key_id}/").status_code == 404


def test_anonymous_requests_cannot_create_or_revoke(api_client, owner_key):
    assert api_client.post(LIST_URL, {"name": "x"}, format="json").status_code == 401
    assert api_client.delete(detail_url(owner_key[0])).status_code == 401
    assert ApiKey.objects.count() == 1


def test_an_api_key_cannot_create_api_keys(owner_key):
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {owner_key[1]}")

    response = client.post(LIST_URL, {"name": "escape hatch"}, format="json")

    assert response.status_code == 403
    assert "cannot create API keys" in response.json()["error"]["message"]
    assert client.get(LIST_URL).status_code == 200  # listing with a key is fine
