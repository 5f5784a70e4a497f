"""Property-based run of the whole REST API against its own OpenAPI schema.

The schema is loaded from /api/schema/ of the in-process WSGI app (config.wsgi.application)
and schemathesis generates requests for every operation in it: valid and invalid ones
(positive and negative modes) from the schema's examples, its boundary values (coverage)
and random data (fuzzing), authenticated with a real API key (`Authorization: Bearer`)
except where a case deliberately drops or mangles the credentials. Every response goes
through `case.call_and_validate` with all of schemathesis' built-in checks (no 5xx, a
documented status code, a documented content type, body and headers matching the schema,
invalid data rejected, valid data accepted, authentication not ignored, 405 and Allow for
undeclared methods), plus one of ours: every error answers the API's error envelope
`{"error": {"code", "message", "fields"}}`.

Three passes:

* `test_api_conforms_to_schema`: user A's key on every operation, with generated ids.
* `test_owned_objects_conform_to_schema`: user A's key on every operation that takes an
  id, with the id of one of A's real objects (a rendered image generation with its
  variant and item, a pending one to cancel, a failed one to retry, one in the trash to
  restore, A's API key), so the success bodies (200, 201, 202, 204, 302) are validated.
* `test_foreign_ids_answer_4xx`: user B's key on the same operations with A's ids: every
  answer conforms to the schema, the declared method answers a 4xx (never a 2xx or 3xx),
  no answer carries A's data, and A's objects are unchanged afterwards.

Passing proves that, for these bounded and derandomized examples (reproducible in CI),
the API never fails with a 5xx, answers only what its schema documents, and does not let
one user read or change another user's objects.
"""

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, assume
from hypothesis import settings as hypothesis_settings
from rest_framework.throttling import ScopedRateThrottle

from config.wsgi import application
from generations import dispatch, services
from generations.models import Generation, Item, Variant
from generations.tests.pipeline_helpers import make_images
from history.models import ApiKey
from history.services import api_key_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
operations_with_id = schema.include(path_regex=r"\{id\}")

FUZZ_SETTINGS = hypothesis_settings(
    # About 15 requests per operation and pass (plus the schema's examples and the coverage
    # cases): the whole file stays well under 90 seconds.
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI is reproducible
    database=None,  # nothing to replay from (or write to) a local example database
    suppress_health_check=[
        # The `api` fixture (users, keys, objects) is function-scoped and shared by every
        # example of an operation on purpose: they all run in the test's transaction.
        HealthCheck.function_scoped_fixture,
        # Generating the larger bodies can be slow on a loaded CI machine; not a failure.
        HealthCheck.too_slow,
    ],
)

UNTHROTTLED = dict.fromkeys(("create", "read", "action"), "1000000/minute")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# The raw API keys of the running test, by role, set by the `api` fixture.
RAW_KEYS: dict[str, str] = {}


class _KeyAuth:
    """A schemathesis auth provider for the API key of `role`, so that schemathesis knows
    which cases carry valid credentials: it skips the provider for the negative cases that
    drop or mangle them, and probes the others without credentials (`ignored_auth`).

    Schemathesis builds the example and coverage cases at collection, before any key
    exists, so the provider writes a placeholder that `_authenticate` swaps for the key."""

    role: ClassVar[str]

    def get(self, case: Any, context: Any) -> str:
        return f"Bearer <{self.role} key>"

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


def _authenticate(case: Any) -> None:
    """Swap the auth provider's placeholder, where it was applied, for the real key."""
    for role, raw_key in RAW_KEYS.items():
        if (case.headers or {}).get("Authorization") == f"Bearer <{role} key>":
            case.headers["Authorization"] = f"Bearer {raw_key}"


class OwnerKey(_KeyAuth):
    role = "owner"


class OtherKey(_KeyAuth):
    role = "other"


def error_envelope(ctx: Any, response: Any, case: Any) -> None:
    """Every error of the API answers history.api.errors' envelope. The schema documents
    the error statuses without a body, so this is checked here."""
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered {content_type!r}, not the JSON error envelope"
    )
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert set(body) == {"error"}, f"error body keys {sorted(body)} != ['error']"
    error = body["error"]
    assert isinstance(error, dict), f"error is not an object: {error!r}"
    assert set(error) == {"code", "message", "fields"}, f"error keys {sorted(error)}"
    assert isinstance(error["code"], str), f"error.code is not a string: {error!r}"
    assert isinstance(error["message"], str), f"error.message is not a string: {error!r}"
    fields = error["fields"]
    assert isinstance(fields, dict), f"error.fields is not an object: {error!r}"
    assert all(
        isinstance(messages, list) and all(isinstance(m, str) for m in messages)
        for messages in fields.values()
    ), f"error.fields values are not lists of strings: {error!r}"


# `positive_data_acceptance` expects every schema-valid request to be accepted. It is
# genuinely inapplicable where the body carries the generation input: `input` (create) and
# `overrides` (regenerate) are free-form JSON by design (the schema gives their content in
# prose) and their validity depends on `kind` and on the registered providers and models,
# which the service checks (generations.inputs.normalise_input) and answers 400 for.
# Everything else still runs on these operations, and every check runs everywhere else.
FREE_FORM_INPUT = {"POST /api/generations/", "POST /api/generations/{id}/regenerate/"}


def _validate(case: Any) -> Any:
    """Send the case as its user and run every check on the answer. In a savepoint: a
    request that breaks the database transaction (and answers 500) must not turn every
    later example, and Hypothesis' replays of the failing one, into 500s too."""
    _authenticate(case)
    excluded = []
    if f"{case.operation.method.upper()} {case.operation.path}" in FREE_FORM_INPUT:
        excluded.append(schemathesis.checks.positive_data_acceptance)
    with transaction.atomic():
        return case.call_and_validate(additional_checks=[error_envelope], excluded_checks=excluded)


@dataclass
class ApiContext:
    """User A's objects: `completed` (with its `variant` and `item`), `pending` (for
    cancel), `failed` (for retry), `trashed` (for restore) and A's API key."""

    owner_key: ApiKey
    completed: Generation
    pending: Generation
    failed: Generation
    trashed: Generation
    variant: Variant
    item: Item

    def keep_owner_key_active(self) -> None:
        """The fuzz may revoke the very key A authenticates with (DELETE /api/keys/{id}/);
        un-revoke it so the following examples still run as A rather than as 401s."""
        ApiKey.objects.filter(pk=self.owner_key.pk).update(revoked_at=None)

    def owned_id(self, path: str) -> str:
        """The id of the one of A's objects that the operation's `{id}` can act on."""
        if path.startswith("/api/keys/"):
            return str(self.owner_key.pk)
        if path.startswith("/api/variants/"):
            return str(self.variant.pk)
        if path.startswith("/api/items/"):
            return str(self.item.pk)
        by_action = {"/cancel/": self.pending, "/retry/": self.failed, "/restore/": self.trashed}
        for suffix, generation in by_action.items():
            if path.endswith(suffix):
                return str(generation.pk)
        return str(self.completed.pk)

    def generations(self) -> list[Generation]:
        return [self.completed, self.pending, self.failed, self.trashed]

    def markers(self) -> list[str]:
        """Strings that only a response carrying A's data would contain."""
        return [
            *(str(generation.pk) for generation in self.generations()),
            str(self.variant.pk),
            str(self.item.pk),
            self.item.asset_key,
            self.owner_key.prefix,
        ]

    def state(self) -> list[Any]:
        """What another user's request must never change: A's generations and key."""
        rows = Generation.objects.filter(pk__in=[g.pk for g in self.generations()])
        return [
            *rows.order_by("pk").values_list("pk", "status", "deleted_at", "updated_at"),
            ApiKey.objects.filter(pk=self.owner_key.pk).values_list("revoked_at").get(),
        ]


def _use_owned_id(case: Any, api: ApiContext) -> None:
    """Put A's real id in the case's path. Only when the generated id was itself a valid
    id: swapping one valid id for another changes no schema verdict, while replacing a
    deliberately invalid one would turn a negative case into a mislabelled positive one.
    Hypothesis discards those negative path cases and draws others in their place."""
    generated = str((case.path_parameters or {}).get("id", ""))
    valid = generated.isdigit() if case.path.startswith("/api/keys/") else UUID_RE.match(generated)
    assume(valid)
    case.path_parameters = {**case.path_parameters, "id": api.owned_id(case.path)}


def _image_generation(owner: Any, *, render: bool = True, **extra: Any) -> Generation:
    """A one-image generation of `owner`, rendered in-process as the workers would unless
    `render` is false (it then stays pending)."""
    return make_images(owner, run=render, prompt="x", variants=["a"], **extra)


@pytest.fixture
def api(owner, other_user, monkeypatch, settings):
    # No message may reach a broker.
    monkeypatch.setattr(dispatch, "_send", lambda *args, **kwargs: None)
    # The throttles must not turn the fuzz into 429s. The settings override reaches DRF's
    # api_settings; SimpleRateThrottle.THROTTLE_RATES was read from them at import time.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": UNTHROTTLED}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", UNTHROTTLED)

    owner_key, RAW_KEYS["owner"] = api_key_create(user=owner, name="fuzz A")
    _, RAW_KEYS["other"] = api_key_create(user=other_user, name="fuzz B")
    completed = _image_generation(owner)
    context = ApiContext(
        owner_key=owner_key,
        completed=completed,
        pending=_image_generation(owner, render=False),
        failed=_image_generation(owner, fail_items=["a:1"]),
        trashed=services.generation_delete(generation=_image_generation(owner)),
        variant=Variant.objects.get(generation=completed),
        item=Item.objects.get(generation=completed),
    )
    assert [g.status for g in context.generations()] == [
        "completed",
        "pending",
        "failed",
        "completed",
    ]
    assert context.item.asset_key, "the in-process render must have stored the image"

    # The WSGI handler runs in this thread, on the test's connection and in its transaction.
    # Its request signals would close that connection (not in autocommit inside the
    # transaction); Django's test client disconnects them for the same reason.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield context
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        RAW_KEYS.clear()


@schema.parametrize()
@schema.auth.apply(OwnerKey, refresh_interval=None)
@FUZZ_SETTINGS
def test_api_conforms_to_schema(case, api):
    api.keep_owner_key_active()
    _validate(case)


@operations_with_id.parametrize()
@schema.auth.apply(OwnerKey, refresh_interval=None)
@FUZZ_SETTINGS
def test_owned_objects_conform_to_schema(case, api):
    _use_owned_id(case, api)
    api.keep_owner_key_active()
    _validate(case)


@operations_with_id.parametrize()
@schema.auth.apply(OtherKey, refresh_interval=None)
@FUZZ_SETTINGS
def test_foreign_ids_answer_4xx(case, api):
    _use_owned_id(case, api)
    before = api.state()
    response = _validate(case)

    request = f"{case.method} {case.formatted_path} as user B"
    if case.method.upper() == case.operation.method.upper():
        # Other methods are schemathesis' undeclared-method probes (405, or OPTIONS' 200
        # with the view's generic description), which the leak check below covers.
        assert 400 <= response.status_code < 500, (
            f"{request} answered {response.status_code}: {response.text[:500]}"
        )
    leaked = [marker for marker in api.markers() if marker and marker in response.text]
    assert not leaked, f"{request} answered A's data {leaked}: {response.text[:500]}"
    assert api.state() == before, f"{request} changed A's generations or API key"
