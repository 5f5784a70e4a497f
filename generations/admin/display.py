"""HTML fragments for the generations admin: status badges, progress, thumbnails, players
and formatted JSON, and the item gallery of the generation and variant pages. Each
fragment works on values already loaded and runs no query; media URLs come from
`object_url`, so they are short-lived."""

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from itertools import groupby
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from generations.admin.base import AdminMixinBase
from generations.kinds import Player, kind_spec
from generations.models import Generation, Item, Variant
from generations.states import ItemStatus
from storage.services import StorageUnavailable, object_url

EMPTY = mark_safe('<span class="gv-muted">—</span>')
# The change pages show at most this many items; the rest are a link to the item list.
ITEM_LIMIT = 120


def admin_link(obj: Generation | Variant | Item, text: str) -> SafeString:
    """A link to the object's admin page."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text)


def short_id(value: object) -> SafeString:
    """An id's first eight characters, whole on hover."""
    return format_html('<code class="gv-id" title="{}">{}</code>', value, str(value)[:8])


def over(main: object, sub: object, *, hint: str = "") -> SafeString:
    """Two lines in a list cell: `main`, unbroken, over a smaller `sub` (`hint` on hover)."""
    return format_html(
        '<span class="gv-nowrap">{}</span><span class="gv-sub"{}>{}</span>',
        main,
        format_html(' title="{}"', hint) if hint else "",
        sub,
    )


def generation_cell(generation: Generation, *, link: bool = False) -> SafeString:
    """A generation's title (cut to the column, whole on hover) over its short id."""
    title = str(generation)
    text = format_html('<span class="gv-title" title="{}">{}</span>', title, title)
    return format_html(
        "{}{}", admin_link(generation, text) if link else text, short_id(generation.id)
    )


def status_badge(status: str, label: str) -> SafeString:
    """A colored badge whose text is the status itself, so color is never the only cue."""
    return format_html('<span class="gv-badge gv-badge--{}">{}</span>', status, label)


def trash_badge() -> SafeString:
    return format_html('<span class="gv-badge gv-badge--trash">{}</span>', "In trash")


def progress(counted: Generation | Variant) -> SafeString:
    """The "done/total" count of a generation's or variant's items with the failed and
    cancelled counts, over a bar split the same way."""
    total = counted.total_items
    completed = counted.completed_items
    failed = counted.failed_items
    cancelled = counted.cancelled_items

    def share(count: int) -> str:
        return f"{count * 100 / total:.1f}" if total else "0"

    extra = []
    if failed:
        extra.append(format_html('<span class="gv-failed">{} failed</span>', failed))
    if cancelled:
        extra.append(format_html('<span class="gv-muted">{} cancelled</span>', cancelled))
    return format_html(
        '<div class="gv-progress"><span class="gv-progress__text">{}/{}</span>{}'
        '<span class="gv-progress__bar" aria-hidden="true">'
        '<span class="gv-progress__done" style="width: {}%"></span>'
        '<span class="gv-progress__failed" style="width: {}%"></span>'
        '<span class="gv-progress__cancelled" style="width: {}%"></span></span></div>',
        completed,
        total,
        format_html(" {}", mark_safe(" · ".join(extra))) if extra else "",  # noqa: S308
        share(completed),
        share(failed),
        share(cancelled),
    )


def error_cell(code: str, message: str) -> SafeString:
    """An error code and its message, or a dash for none."""
    if not code:
        return EMPTY
    return format_html("<code>{}</code> {}", code, message)


def moment(value: datetime | None) -> SafeString:
    """A date over its time, in the current time zone: narrow enough for a list column."""
    if value is None:
        return EMPTY
    local = timezone.localtime(value)
    return over(formats.date_format(local, "Y-m-d"), formats.date_format(local, "H:i:s"))


def seconds(value: float | None) -> str:
    """A duration for people: "850 ms", "12.4 s", "3 min 05 s", "15 min"."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s" if rest else f"{minutes} min"


def filesize(size: int | None) -> str:
    """A file size for people ("2.0 KB"), or a dash for none."""
    return "—" if size is None else str(filesizeformat(size))


def media_url(key: str) -> str | None:
    """A short-lived URL for `key`, or None when there is no key or it cannot be signed."""
    if not key:
        return None
    try:
        return object_url(key)
    except StorageUnavailable:
        return None


def thumbnail(key: str | None, *, alt: str) -> SafeString:
    url = media_url(key or "")
    if url is None:
        return format_html('<span class="gv-thumb gv-thumb--empty" title="{}">—</span>', alt)
    return format_html(
        '<img class="gv-thumb" src="{}" alt="{}" width="56" height="32" loading="lazy">', url, alt
    )


def json_block(value: Any) -> SafeString:
    """A JSON value indented for reading; an empty one says so."""
    if value in (None, {}, []):
        return format_html('<span class="gv-muted">{}</span>', "Empty")
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return format_html('<pre class="gv-json">{}</pre>', text)


def _video(asset: str, thumb: str | None, name: str, item: Item) -> SafeString:
    return format_html(
        '<video class="gv-player" controls preload="none" src="{}"{} aria-label="{}"></video>',
        asset,
        format_html(' poster="{}"', thumb) if thumb else "",
        f"{name} (video)",
    )


def _audio(asset: str, thumb: str | None, name: str, item: Item) -> SafeString:
    return format_html(
        '{}<audio class="gv-audio" controls preload="none" src="{}" aria-label="{}"></audio>',
        format_html('<img class="gv-wave" src="{}" alt="Waveform of {}">', thumb, name.lower())
        if thumb
        else "",
        asset,
        f"{name} (audio)",
    )


def _image(asset: str, thumb: str | None, name: str, item: Item) -> SafeString:
    return format_html(
        '<a href="{}"><img class="gv-player" src="{}" alt="{}" loading="lazy"></a>',
        asset,
        asset,
        item.prompt[:140] or f"{name} (image)",
    )


# A completed item's markup, by its kind's player; each takes the file's URL, its poster
# or waveform's URL (if any), the item's name and the item.
PLAYERS: dict[Player, Callable[[str, str | None, str, Item], SafeString]] = {
    "video": _video,
    "audio": _audio,
    "image": _image,
}


def item_media(item: Item, *, kind: str) -> SafeString:
    """A completed item's player (the one its kind's spec names: video or audio, with its
    poster or waveform, or image); otherwise its thumbnail or a word on where it stands.
    Players load nothing until played (preload="none")."""
    name = f"Item {item.number}"
    asset = media_url(item.asset_key) if item.status == ItemStatus.COMPLETED else None
    thumb = media_url(item.thumbnail_key)
    if asset:
        return PLAYERS[kind_spec(kind).player](asset, thumb, name, item)
    if thumb:
        return format_html(
            '<img class="gv-player" src="{}" alt="Thumbnail of {}" loading="lazy">',
            thumb,
            name.lower(),
        )
    return format_html('<div class="gv-player gv-player--empty">{}</div>', _placeholder(item))


def _placeholder(item: Item) -> str:
    if item.status == ItemStatus.COMPLETED:
        return "File unavailable"
    if item.status in (ItemStatus.QUEUED, ItemStatus.PROCESSING):
        return f"{item.get_status_display()}…"
    return "No file"


def item_gallery_context(
    items: Iterable[Item], *, kind: str, total: int, item_filter: str
) -> dict[str, Any]:
    """What a change page's item gallery needs: the first ITEM_LIMIT items with players,
    how many there are, and a link to all of them in the item list (`item_filter` is
    its query string, e.g. `variant__id__exact=<id>`)."""
    return {
        "item_gallery": item_gallery(items, kind=kind),
        "item_total": total,
        "item_limit": ITEM_LIMIT,
        "item_list_url": f"{reverse('admin:generations_item_changelist')}?{item_filter}",
    }


def item_gallery(items: Iterable[Item], *, kind: str) -> list[dict[str, Any]]:
    """Items (ordered by variant, then number, with their variants loaded) grouped by
    variant, each with its player markup, for the `_items.html` template."""
    return [
        {
            "variant": variant,
            "entries": [{"item": item, "media": item_media(item, kind=kind)} for item in group],
        }
        for variant, group in groupby(items, key=lambda item: item.variant)
    ]


class ItemGalleryMixin(AdminMixinBase):
    """A change page with its items below the inlines (`_items.html`), from the context
    that `gallery_context` gives for the object."""

    def gallery_context(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.gallery_context(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)
