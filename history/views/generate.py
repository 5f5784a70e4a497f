"""The generate form and the actions on one generation (regenerate, retry, cancel,
delete, restore). Each view loads the generation through `owned_generation` (another
user's id is a 404), calls one service and says what happened with a message."""

from datetime import timedelta
from typing import IO, Any, cast
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from generations import services
from generations.errors import ActionRefused, InputError
from generations.kinds import KINDS, GenerationKind, kind_spec
from generations.models import Generation
from generations.providers import get_provider
from generations.states import can_cancel
from history.forms import GenerationForm, kind_defaults
from history.views.access import owned_generation, page_user


def _safe_next(request: HttpRequest) -> str | None:
    """`?next=` (or a posted `next`) when it points back into this site."""
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(_safe_next(request) or fallback)


def _detail_url(generation: Generation) -> str:
    return reverse("history:detail", kwargs={"generation_id": generation.id})


# The form -----------------------------------------------------------------------------


def _parent(request: HttpRequest, params: QueryDict) -> Generation | None:
    """The generation named by `from` (being edited and regenerated), or None; 404 for a
    malformed id or one that is not the user's."""
    value = params.get("from")
    if not value:
        return None
    try:
        parent_id = UUID(value)
    except ValueError:
        raise Http404("No such generation.") from None
    return owned_generation(request, parent_id)


def _build_form(kind: str, parent: Generation | None, **kwargs: Any) -> GenerationForm:
    """The form of `kind`, offering the fault-injection fields when the provider the
    generation will run on takes them."""
    provider = get_provider(parent.provider if parent else settings.GENVAULT_DEFAULT_PROVIDER)
    return GenerationForm(
        spec=kind_spec(kind),
        fault_injection=provider.capabilities.fault_injection,
        stored_source=str(parent.input.get("source_key", "")) if parent else "",
        **kwargs,
    )


def _submit(
    request: HttpRequest, kind: str, form: GenerationForm, parent: Generation | None
) -> Generation:
    """Create the generation the valid `form` describes; a regeneration of `parent` when
    editing one. Raises InputError and ActionRefused (LimitExceeded)."""
    owner = page_user(request)
    title: str = form.cleaned_data["title"]
    upload = form.cleaned_data.get("source_file")
    if parent is not None and upload is None:
        return services.generation_regenerate(
            generation=parent, owner=owner, overrides={**form.to_input(), "title": title}
        )
    # A new upload replaces the edited generation's source: a new generation, still
    # linked to the one it came from.
    return services.generation_create(
        owner=owner,
        kind=kind,
        input=form.to_input(),
        title=title,
        source_file=cast(IO[bytes], upload) if upload is not None else None,
        source_filename=upload.name if upload is not None else "",
        parent=parent,
    )


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    """One form per kind (`?kind=`); `?from=<id>` starts from that generation's input and
    makes the result its regeneration."""
    params = request.POST if request.method == "POST" else request.GET
    parent = _parent(request, params)
    requested = params.get("kind", "")
    kind = parent.kind if parent else requested
    if kind not in KINDS:
        kind = GenerationKind.VIDEO_AD

    if request.method == "POST":
        form = _build_form(kind, parent, data=request.POST, files=request.FILES)
        if form.is_valid():
            try:
                generation = _submit(request, kind, form, parent)
            except InputError as error:
                form.apply_input_error(error)
            except ActionRefused as refused:
                form.add_error(None, str(refused))
            else:
                items = kind_spec(generation.kind).count(generation.total_items)
                messages.success(request, f"Generation submitted: {items} queued.")
                return redirect(_detail_url(generation))
    else:
        form = _build_form(kind, parent)
        if parent:
            form.initial_from(parent.input, title=parent.title)
        else:
            form.initial_from(kind_defaults(form.spec, fault_injection=form.fault_injection))

    context = {
        "form": form,
        "kind": kind,
        "kind_label": form.spec.label,
        "kinds": GenerationKind.choices,
        "parent": parent,
    }
    return render(request, "history/generate.html", context)


@login_required
@require_safe
def edit_and_regenerate(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    generation = owned_generation(request, generation_id)
    query = urlencode({"kind": generation.kind, "from": str(generation.id)})
    return redirect(f"{reverse('history:generate')}?{query}")


# Actions ------------------------------------------------------------------------------


@login_required
@require_POST
def regenerate(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    """A new generation with the same input and seed; goes to the new one."""
    generation = owned_generation(request, generation_id)
    try:
        regenerated = services.generation_regenerate(
            generation=generation, owner=page_user(request)
        )
    except (ActionRefused, InputError) as refused:
        messages.error(request, f"Could not regenerate: {refused}")
        return _back(request, _detail_url(generation))
    messages.success(request, f"Regenerating “{generation}” as a new generation.")
    return _back(request, _detail_url(regenerated))


@login_required
@require_POST
def retry(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    generation = owned_generation(request, generation_id)
    try:
        queued = services.generation_retry(generation=generation)
    except ActionRefused as refused:
        messages.error(request, str(refused))
    else:
        items = kind_spec(generation.kind).count(queued)
        messages.success(request, f"Retrying {items}; the completed ones are kept.")
    return _back(request, _detail_url(generation))


@login_required
@require_POST
def cancel(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    generation = owned_generation(request, generation_id)
    try:
        services.generation_cancel(generation=generation)
    except ActionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Cancelled “{generation}”; items already made are kept.")
    return _back(request, _detail_url(generation))


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    """GET asks for confirmation; POST moves the generation to the trash."""
    generation = owned_generation(request, generation_id)
    retention_days = settings.TRASH_RETENTION_DAYS
    if request.method == "GET":
        context = {
            "generation": generation,
            "running": can_cancel(generation.status),
            "retention_days": retention_days,
            "purge_at": timezone.now() + timedelta(days=retention_days),
            "back_url": _safe_next(request) or _detail_url(generation),
            "next_url": _safe_next(request) or "",
        }
        return render(request, "history/confirm_delete.html", context)
    try:
        services.generation_delete(generation=generation)
    except ActionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            f"Moved “{generation}” to the trash; you can restore it for {retention_days} days.",
        )
    fallback = reverse("history:list")
    next_url = _safe_next(request)
    # The deleted generation's own pages are gone now.
    if next_url and str(generation.id) not in next_url:
        return HttpResponseRedirect(next_url)
    return HttpResponseRedirect(fallback)


@login_required
@require_POST
def restore(request: HttpRequest, generation_id: UUID) -> HttpResponse:
    generation = owned_generation(request, generation_id, include_deleted=True)
    try:
        services.generation_restore(generation=generation)
    except ActionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Restored “{generation}” to your history.")
    return _back(request, reverse("history:trash"))
