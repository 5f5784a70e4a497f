from uuid import UUID

from django.contrib.auth.models import User
from django.http import Http404, HttpRequest

from generations import selectors
from generations.models import Generation


def page_user(request: HttpRequest) -> User:
    """The signed-in user of a page behind login_required."""
    user = request.user
    if not isinstance(user, User):
        raise Http404
    return user


def owned_generation(
    request: HttpRequest, generation_id: UUID, *, include_deleted: bool = False
) -> Generation:
    """The signed-in user's generation, or 404: another user's id looks exactly like a
    missing one."""
    try:
        return selectors.generation_get(
            user=page_user(request), generation_id=generation_id, include_deleted=include_deleted
        )
    except Generation.DoesNotExist:
        raise Http404("No such generation.") from None
