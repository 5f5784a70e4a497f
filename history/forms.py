"""Forms of the pages: the filters of the lists and one generation form per kind.

The forms only parse and type what a person typed. What is valid belongs to
`generations.inputs`: its InputError is put back onto these fields with
`GenerationForm.apply_input_error`, and the defaults shown come from it too, so a rule
lives in one place. The list filters hand their values to `history.api.filters`'s
GenerationFilter, so the pages and the API filter identically.
"""

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar, cast

from django import forms
from django.utils import timezone

from generations.errors import InputError
from generations.inputs import normalise_input
from generations.kinds import VIDEO_AD, GenerationKind, kind_spec
from generations.states import GenerationStatus
from history.api.filters import MAX_SEARCH_LENGTH

# List filters -------------------------------------------------------------------------

STATUS_GROUPS = [
    ("pending,processing", "Running (pending or processing)"),
    ("failed,partial_success", "With failures (failed or partial)"),
]


def _split(text: str) -> list[str]:
    """`"a, b  c,"` as `["a", "b", "c"]`."""
    return [part for part in re.split(r"[\s,]+", text) if part]


class StatusSelect(forms.Select):
    """One select; repeated `?status=` parameters are read as the comma-separated list
    that GenerationFilter takes."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> str:
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name) or ""]
        parts = [part for value in values for part in _split(str(value))]
        return ",".join(dict.fromkeys(parts))


class StatusField(forms.ChoiceField):
    """A status, or several joined with commas."""

    widget = StatusSelect

    def valid_value(self, value: Any) -> bool:
        parts = str(value).split(",")
        return all(part in GenerationStatus.values for part in parts)


class ListFilterForm(forms.Form):
    """The toolbar shared by the history and the library: search, kind and a date range
    (both dates inclusive)."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=MAX_SEARCH_LENGTH,
        widget=forms.SearchInput(attrs={"placeholder": "Title, prompt or source URL"}),
    )
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *GenerationKind.choices]
    )
    created_after = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_before = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        after, before = cleaned.get("created_after"), cleaned.get("created_before")
        if after and before and after > before:
            self.add_error("created_before", "Must be on or after the From date.")
        return cleaned

    @property
    def is_filtered(self) -> bool:
        """Whether the request asks for any filter at all (valid or not)."""
        return any(self[name].value() for name in self.fields)

    def filter_data(self) -> dict[str, str]:
        """The valid filters in GenerationFilter's terms; invalid ones are left out (their
        errors are shown next to them)."""
        cleaned: dict[str, Any] = getattr(self, "cleaned_data", {})
        data = {
            name: str(cleaned[name])
            for name in ("q", "status", "kind", "variant")
            if cleaned.get(name)
        }
        if after := cleaned.get("created_after"):
            data["created_after"] = _start_of(after).isoformat()
        if before := cleaned.get("created_before"):
            data["created_before"] = _start_of(before + timedelta(days=1)).isoformat()
        return data


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


STATUS_CHOICES = [("", "Any status"), *STATUS_GROUPS, *GenerationStatus.choices]


class HistoryFilterForm(ListFilterForm):
    status = StatusField(label="Status", required=False, choices=STATUS_CHOICES)

    field_order = ["q", "status", "kind", "created_after", "created_before"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A combination reached by a link (?status=failed&status=cancelled) stays selected.
        field = cast(StatusField, self.fields["status"])
        current = str(self["status"].value() or "") if self.is_bound else ""
        if current and current not in dict(STATUS_CHOICES) and field.valid_value(current):
            labels = dict(GenerationStatus.choices)
            combined = " or ".join(str(labels[part]) for part in current.split(","))
            field.choices = [*STATUS_CHOICES, (current, combined)]


class LibraryFilterForm(ListFilterForm):
    variant = forms.CharField(
        label="Variant",
        required=False,
        max_length=50,
        widget=forms.TextInput(attrs={"placeholder": "e.g. soft"}),
    )

    field_order = ["q", "variant", "kind", "created_after", "created_before"]


# Generation forms ---------------------------------------------------------------------

VIDEO_VARIANTS = VIDEO_AD.variant_presets


def kind_defaults(kind: str) -> dict[str, Any]:
    """The input `generations.inputs` fills in for `kind` when nothing is given: the
    values a new form starts from (no text, no seed)."""
    text_field = kind_spec(kind).text_field
    defaults = normalise_input(kind, {text_field: "-"})
    defaults[text_field] = ""
    defaults.pop("seed")
    return defaults


def _whole(label: str, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(label=label, help_text=help_text)


class GenerationForm(forms.Form):
    """What every kind asks for. Subclasses name the input fields they copy as they are
    (`plain_fields`) and the ones shown under Advanced (`advanced_fields`)."""

    kind: ClassVar[str]
    plain_fields: ClassVar[tuple[str, ...]]
    advanced_fields: ClassVar[tuple[str, ...]] = ("fail_items", "delay_ms")

    title = forms.CharField(
        label="Title",
        required=False,
        max_length=200,
        help_text="Optional; the start of the prompt is used when it is empty.",
    )
    seed = forms.IntegerField(
        label="Seed",
        required=False,
        min_value=0,
        help_text="The same seed and input give the same output; leave empty for a random one.",
    )
    fail_items = forms.CharField(
        label="Items that fail on purpose",
        required=False,
        help_text="For trying out failures: e.g. “2” (item 2 of every variant) or “soft:2”.",
    )
    delay_ms = _whole("Delay per item (ms)", "Slows each item down, to watch progress.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_from(cls, snapshot: Mapping[str, Any], *, title: str = "") -> dict[str, Any]:
        """Form values from an input snapshot (a generation's, or `kind_defaults`)."""
        initial = {name: snapshot[name] for name in cls.plain_fields if name in snapshot}
        initial["title"] = title
        initial["seed"] = snapshot.get("seed")
        initial["fail_items"] = ", ".join(str(ref) for ref in snapshot.get("fail_items", []))
        initial["delay_ms"] = snapshot.get("delay_ms", 0)
        initial["variants"] = ", ".join(snapshot.get("variants", []))
        return initial

    def to_input(self) -> dict[str, Any]:
        """The input to validate, every field given explicitly so that, as overrides of a
        regeneration, a cleared field replaces the original's value (a cleared seed asks
        for a random one)."""
        data = self.cleaned_data
        result = {name: data[name] for name in self.plain_fields}
        result["seed"] = data["seed"]
        result["fail_items"] = _split(data["fail_items"])
        result["delay_ms"] = data["delay_ms"]
        result["variants"] = self.variant_labels()
        return result

    def variant_labels(self) -> list[str]:
        return _split(self.cleaned_data["variants"])

    def error_field(self, name: str) -> str | None:
        """The form field an input error about `name` belongs to."""
        return name if name in self.fields else None

    def apply_input_error(self, error: InputError) -> None:
        """Each message next to its field; messages about fields this form does not show
        go on top, named."""
        for name, messages in error.fields.items():
            field = self.error_field(name)
            if field is None:
                self.add_error(None, [f"{name}: {message}" for message in messages])
            else:
                self.add_error(field, messages)

    @property
    def advanced(self) -> list[forms.BoundField]:
        return [self[name] for name in self.advanced_fields]

    @property
    def advanced_has_errors(self) -> bool:
        return any(name in self.errors for name in self.advanced_fields)


class VideoAdForm(GenerationForm):
    kind = GenerationKind.VIDEO_AD
    plain_fields = (
        "prompt",
        "scenes_per_variant",
        "scene_seconds",
        "source_url",
        "width",
        "height",
        "fps",
    )
    advanced_fields = ("width", "height", "fps", "fail_items", "delay_ms")

    prompt = forms.CharField(
        label="Prompt",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the ad shows. Optional when a source URL or file is given.",
    )
    variants = forms.MultipleChoiceField(
        label="Variants",
        required=False,
        choices=[(label, label.capitalize()) for label in VIDEO_VARIANTS],
        widget=forms.CheckboxSelectMultiple,
        help_text="One version of the ad each, from gentle to pushy.",
    )
    other_variants = forms.CharField(
        label="Other variant labels",
        required=False,
        help_text="Comma-separated, e.g. “calm, bold”: lowercase letters, digits, - and _.",
    )
    scenes_per_variant = _whole("Items per variant")
    scene_seconds = forms.FloatField(label="Seconds per item")
    source_url = forms.CharField(
        label="Source URL",
        required=False,
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
        help_text="A video or page to analyse first (http or https).",
    )
    source_file = forms.FileField(
        label="Source file",
        required=False,
        help_text="Or upload a video to analyse instead of a URL.",
    )
    keep_source = forms.BooleanField(label="Reuse the original's uploaded source", required=False)
    width = _whole("Width (px)", "An even number.")
    height = _whole("Height (px)", "An even number.")
    fps = _whole("Frames per second")

    def __init__(self, *args: Any, stored_source: str = "", **kwargs: Any) -> None:
        """`stored_source`: the key of the uploaded source of the generation being edited;
        without one there is nothing to reuse and `keep_source` is not offered."""
        super().__init__(*args, **kwargs)
        if stored_source:
            keep = self.fields["keep_source"]
            name = stored_source.rsplit("/", 1)[-1]
            keep.help_text = f"Uses the file {name} again; clear it to give another source."
            keep.initial = True
        else:
            del self.fields["keep_source"]

    @classmethod
    def initial_from(cls, snapshot: Mapping[str, Any], *, title: str = "") -> dict[str, Any]:
        initial = super().initial_from(snapshot, title=title)
        labels = list(snapshot.get("variants", []))
        initial["variants"] = [label for label in labels if label in VIDEO_VARIANTS]
        initial["other_variants"] = ", ".join(
            label for label in labels if label not in VIDEO_VARIANTS
        )
        return initial

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("keep_source"):
            if cleaned.get("source_url"):
                self.add_error("source_url", "Give a source URL or reuse the original's, not both.")
            if cleaned.get("source_file"):
                self.add_error("source_file", "Upload a file or reuse the original's, not both.")
        return cleaned

    def to_input(self) -> dict[str, Any]:
        result = super().to_input()
        if self.cleaned_data.get("keep_source"):
            # Left out, the regeneration keeps the original's stored upload.
            del result["source_url"]
        return result

    def variant_labels(self) -> list[str]:
        checked = list(self.cleaned_data["variants"])
        return checked + _split(self.cleaned_data["other_variants"])

    def error_field(self, name: str) -> str | None:
        if name == "source_key":
            return "source_file"
        return super().error_field(name)


class SpeechForm(GenerationForm):
    kind = GenerationKind.SPEECH
    plain_fields = ("text", "words_per_minute")

    text = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What is read aloud, split into tracks of about a sentence each.",
    )
    words_per_minute = _whole("Words per minute")
    variants = forms.CharField(
        label="Variants",
        help_text="Comma-separated voice labels, e.g. “narrator, calm”.",
    )


class ImageForm(GenerationForm):
    kind = GenerationKind.IMAGE
    plain_fields = ("prompt", "images_per_variant", "width", "height")

    prompt = forms.CharField(
        label="Prompt",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the image shows.",
    )
    images_per_variant = _whole("Images per variant")
    variants = forms.CharField(
        label="Variants",
        help_text="Comma-separated labels, e.g. “default, bold”.",
    )
    width = _whole("Width (px)", "An even number.")
    height = _whole("Height (px)", "An even number.")


GENERATION_FORMS: dict[str, type[GenerationForm]] = {
    form.kind: form for form in (VideoAdForm, SpeechForm, ImageForm)
}
