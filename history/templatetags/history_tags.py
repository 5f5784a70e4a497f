from django import template

from generations.kinds import GenerationKind

register = template.Library()

ITEM_NOUNS: dict[str, str] = {
    GenerationKind.VIDEO_AD: "items",
    GenerationKind.SPEECH: "tracks",
    GenerationKind.IMAGE: "images",
}


@register.simple_tag
def percent(part: int, total: int) -> int:
    """The whole-number percentage of `part` in `total` (0 for an empty total)."""
    return part * 100 // total if total else 0


@register.filter
def item_noun(kind: str) -> str:
    """What a kind's items are called: items, tracks or images."""
    return (
        ITEM_NOUNS.get(GenerationKind(kind), "items") if kind in GenerationKind.values else "items"
    )


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
