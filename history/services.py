"""Writes behind API keys: create, revoke, and the authentication check that records when a
key was last used. The account page, the API and the admin all call these."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from history.models import ApiKey

KEY_MARKER = "gv"
PREFIX_BYTES = 4  # 8 hex characters
SECRET_BYTES = 32  # 43 URL-safe characters
NAME_MAX_LENGTH = 100
MAX_ACTIVE_KEYS = 20
LAST_USED_RESOLUTION = timedelta(minutes=1)
_PREFIX_ATTEMPTS = 5


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for `user` and return it with the raw key, which is never stored and
    cannot be shown again. Raises ValidationError({"name": [...]}) for a blank, long or
    duplicate name, or when the user already has MAX_ACTIVE_KEYS active keys."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the key a name."]})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": [f"Use at most {NAME_MAX_LENGTH} characters."]})

    with transaction.atomic():
        # The user's row lock serialises their key creations, so that two concurrent
        # requests cannot both pass the cap or the name check.
        User.objects.select_for_update().only("pk").get(pk=user.pk)
        active = ApiKey.objects.filter(user=user, revoked_at__isnull=True)
        if active.filter(name=name).exists():
            raise ValidationError({"name": ["You already have an active key with this name."]})
        if active.count() >= MAX_ACTIVE_KEYS:
            raise ValidationError(
                {"name": [f"You already have {MAX_ACTIVE_KEYS} active keys; revoke one first."]}
            )
        attempts = 0
        while True:
            prefix = secrets.token_hex(PREFIX_BYTES)
            raw_key = f"{KEY_MARKER}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
            try:
                # A savepoint, so that a prefix collision leaves the transaction usable.
                with transaction.atomic():
                    api_key = ApiKey.objects.create(
                        user=user, name=name, prefix=prefix, key_hash=_digest(raw_key)
                    )
                return api_key, raw_key
            except IntegrityError:
                attempts += 1
                if attempts >= _PREFIX_ATTEMPTS:
                    raise


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke the key from now on; revoking a revoked key keeps its first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (with its user loaded), or None when the key is
    malformed, unknown, wrong, revoked or its user is inactive. Records the time of use,
    writing at most once per LAST_USED_RESOLUTION per key."""
    prefix = _parse_prefix(raw_key)
    if prefix is None:
        return None
    api_key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _digest(raw_key)):
        return None
    if api_key.revoked_at is not None or not api_key.user.is_active:
        return None
    _record_use(api_key)
    return api_key


def _record_use(api_key: ApiKey) -> None:
    now = timezone.now()
    stale_before = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at >= stale_before:
        return
    # Guarded: of concurrent requests with the same key, one write wins and the rest
    # change nothing.
    updated = (
        ApiKey.objects.filter(pk=api_key.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale_before))
        .update(last_used_at=now)
    )
    if updated:
        api_key.last_used_at = now


def _parse_prefix(raw_key: str) -> str | None:
    """The prefix of a well-formed `gv_<prefix>_<secret>` key, else None."""
    marker, _, rest = raw_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if marker != KEY_MARKER or len(prefix) != PREFIX_BYTES * 2 or not secret:
        return None
    if any(char not in "0123456789abcdef" for char in prefix):
        return None
    return prefix


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()
