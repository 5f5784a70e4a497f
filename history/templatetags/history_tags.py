from django import template

from generations.kinds import KINDS

register = template.Library()


@register.simple_tag
def percent(part: int, total: int) -> int:
    """The whole-number percentage of `part` in `total` (0 for an empty total)."""
    return part * 100 // total if total else 0


@register.filter
def item_noun(kind: str, count: int = 2) -> str:
    """What `count` of a kind's items are called: `scenes`, `1 track`'s `track`, ...;
    `items` for a kind that is not known."""
    spec = KINDS.get(kind)
    if spec is None:
        return "item" if count == 1 else "items"
    return spec.noun(count)


@register.filter
def duration(seconds: float | None) -> str:
    """`83.4` as `1 min 23 s`; `4.2` as `4.2 s`; None as an em dash."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@register.filter
def filesize(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
