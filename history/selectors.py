"""Reads of API keys, scoped to their user; callers never filter by user themselves."""

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from history.models import ApiKey


def api_keys_of(user: User) -> QuerySet[ApiKey]:
    """`user`'s keys: active ones first, newest first, then revoked ones, latest revoked
    first."""
    return ApiKey.objects.filter(user=user).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-id"
    )


def api_key_get(*, user: User, key_id: int | str) -> ApiKey:
    """One of `user`'s keys, active or revoked; raises ApiKey.DoesNotExist for anyone
    else's."""
    return ApiKey.objects.filter(user=user).get(id=key_id)
