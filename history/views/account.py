"""The account page: who is signed in, their API keys, creating and revoking a key."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from history.models import ApiKey
from history.selectors import api_key_get, api_keys_of
from history.services import MAX_ACTIVE_KEYS, NAME_MAX_LENGTH, api_key_create, api_key_revoke
from history.views.access import page_user

# Active keys are capped (MAX_ACTIVE_KEYS) but revoked ones accumulate; the page shows the
# active ones and the most recently revoked, up to this many rows in all.
KEYS_SHOWN = 100


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=NAME_MAX_LENGTH,
        help_text="Say where the key will be used, e.g. “CI pipeline” or “laptop”.",
        error_messages={"required": "Give the key a name."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """GET lists the user's keys; POST creates one and answers with the page itself (not a
    redirect), the only response that ever carries the raw key."""
    user = page_user(request)
    created: ApiKey | None = None
    raw_key = ""
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                created, raw_key = api_key_create(user=user, name=form.cleaned_data["name"])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                form = ApiKeyForm()
    else:
        form = ApiKeyForm()

    context = _account_context(request, user, form=form, created=created, raw_key=raw_key)
    response = render(request, "history/account.html", context)
    # The page lists keys and may carry a raw key: keep it out of every cache.
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def revoke_key(request: HttpRequest, key_id: int) -> HttpResponse:
    """Revoke one of the user's keys; anyone else's key answers 404."""
    try:
        api_key = api_key_get(user=page_user(request), key_id=key_id)
    except ApiKey.DoesNotExist:
        raise Http404("No such API key.") from None
    api_key_revoke(api_key=api_key)
    messages.success(request, f"The key “{api_key.name}” is revoked; it no longer works.")
    return redirect("history:account")


def _account_context(
    request: HttpRequest, user: User, *, form: ApiKeyForm, created: ApiKey | None, raw_key: str
) -> dict[str, Any]:
    keys = list(api_keys_of(user)[: KEYS_SHOWN + 1])
    return {
        "form": form,
        "keys": keys[:KEYS_SHOWN],
        "keys_truncated": len(keys) > KEYS_SHOWN,
        "keys_shown": KEYS_SHOWN,
        "max_active_keys": MAX_ACTIVE_KEYS,
        "created": created,
        "raw_key": raw_key,
        "api_example_url": _api_example_url(request),
    }


def _api_example_url(request: HttpRequest) -> str:
    """The absolute URL of the generation list, for the curl example."""
    return request.build_absolute_uri(reverse("api:generation-list"))
