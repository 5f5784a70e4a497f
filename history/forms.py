"""Forms of the pages: the filters of the lists and one generation form per kind.

The forms only parse and type what a person typed. What is valid belongs to
`generations.inputs`: its InputError is put back onto these fields with
`GenerationForm.apply_input_error`, and the defaults shown come from it too, so a rule
lives in one place. The list filters hand their values to `history.filters`'s
GenerationFilter, so the pages and the API filter identically.
"""

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.utils import timezone

from generations.errors import InputError
from generations.inputs import normalise_input
from generations.kinds import GenerationKind, InputField, KindSpec
from generations.states import GenerationStatus
from history.filters import MAX_SEARCH_LENGTH

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


def kind_defaults(spec: KindSpec, *, fault_injection: bool) -> dict[str, Any]:
    """The input `generations.inputs` fills in for a kind when nothing is given: the
    values a new form starts from (no text, no seed)."""
    defaults = normalise_input(spec.kind, {spec.text_field: "-"}, fault_injection=fault_injection)
    defaults[spec.text_field] = ""
    defaults.pop("seed")
    return defaults


def _form_field(field: InputField) -> forms.Field:
    """The form control of one of a kind's input fields; the limits themselves are
    checked by `generations.inputs`, whose errors land next to the control."""
    options: dict[str, Any] = {"label": field.label, "help_text": field.help_text}
    if field.type == "number":
        return forms.FloatField(**options)
    if field.type in ("integer", "even_size"):
        if field.type == "even_size" and not field.help_text:
            options["help_text"] = "An even number."
        return forms.IntegerField(**options)
    if field.type == "url":
        return forms.CharField(
            required=False, widget=forms.URLInput(attrs={"placeholder": "https://"}), **options
        )
    widget = forms.Textarea(attrs={"rows": 8 if field.max_chars > 5000 else 4})
    return forms.CharField(
        required=field.required, widget=widget if field.multiline else None, **options
    )


class GenerationForm(forms.Form):
    """The form of one kind, built from its spec: the title, the kind's own fields (the
    advanced ones folded away), its variants, a source for kinds that analyse one, the
    seed, and, for a provider that takes them, the fault-injection fields folded under
    Testing. It only parses and types; what is valid is `generations.inputs`'s call."""

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

    def __init__(
        self,
        *args: Any,
        spec: KindSpec,
        fault_injection: bool,
        stored_source: str = "",
        **kwargs: Any,
    ) -> None:
        """`stored_source`: the key of the uploaded source of the generation being edited;
        without one there is nothing to reuse and `keep_source` is not offered."""
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.fault_injection = fault_injection
        for field in spec.fields:
            self.fields[field.name] = _form_field(field)
        if spec.variant_presets:
            self.fields["variants"] = forms.MultipleChoiceField(
                label="Variants",
                required=False,
                choices=[(label, label.capitalize()) for label in spec.variant_presets],
                widget=forms.CheckboxSelectMultiple,
                help_text=spec.variants_help,
            )
            self.fields["other_variants"] = forms.CharField(
                label="Other variant labels",
                required=False,
                help_text="Comma-separated, e.g. “calm, bold”: lowercase letters, digits, - and _.",
            )
        else:
            self.fields["variants"] = forms.CharField(
                label="Variants", help_text=spec.variants_help
            )
        if spec.accepts_source:
            self.fields["source_file"] = forms.FileField(
                label="Source file",
                required=False,
                help_text="Or upload a video to analyse instead of a URL.",
            )
            if stored_source:
                name = stored_source.rsplit("/", 1)[-1]
                self.fields["keep_source"] = forms.BooleanField(
                    label="Reuse the original's uploaded source",
                    required=False,
                    initial=True,
                    help_text=f"Uses the file {name} again; clear it to give another source.",
                )
        if fault_injection:
            self.fields["fail_items"] = forms.CharField(
                label="Items that fail on purpose",
                required=False,
                help_text="To try out failures: e.g. “2” (item 2 of every variant) or “soft:2”.",
            )
            self.fields["delay_ms"] = forms.IntegerField(
                label="Delay per item (ms)", help_text="Slows each item down, to watch progress."
            )

    # The groups the template lays out.

    def _bound(self, names: list[str]) -> list[forms.BoundField]:
        return [self[name] for name in names if name in self.fields]

    @property
    def text(self) -> forms.BoundField:
        return self[self.spec.text_field]

    @property
    def variant_fields(self) -> list[forms.BoundField]:
        return self._bound(["variants", "other_variants"])

    @property
    def main(self) -> list[forms.BoundField]:
        """The kind's own fields shown unfolded, beside its text and source."""
        return self._bound(
            [
                field.name
                for field in self.spec.fields
                if not field.advanced and field.name != self.spec.text_field and field.type != "url"
            ]
        )

    @property
    def source(self) -> list[forms.BoundField]:
        if not self.spec.accepts_source:
            return []
        urls = [field.name for field in self.spec.fields if field.type == "url"]
        return self._bound(["keep_source", *urls, "source_file"])

    @property
    def advanced(self) -> list[forms.BoundField]:
        return self._bound([field.name for field in self.spec.fields if field.advanced])

    @property
    def testing(self) -> list[forms.BoundField]:
        return self._bound(["fail_items", "delay_ms"])

    @property
    def advanced_has_errors(self) -> bool:
        return any(field.errors for field in self.advanced)

    @property
    def testing_has_errors(self) -> bool:
        return any(field.errors for field in self.testing)

    # From a snapshot, and back.

    def initial_from(self, snapshot: Mapping[str, Any], *, title: str = "") -> None:
        """Start from an input snapshot (a generation's, or `kind_defaults`)."""
        initial = {
            field.name: snapshot[field.name] for field in self.spec.fields if field.name in snapshot
        }
        initial["title"] = title
        initial["seed"] = snapshot.get("seed")
        initial["fail_items"] = ", ".join(str(ref) for ref in snapshot.get("fail_items", []))
        initial["delay_ms"] = snapshot.get("delay_ms", 0)
        labels = list(snapshot.get("variants", []))
        presets = self.spec.variant_presets
        if presets:
            initial["variants"] = [label for label in labels if label in presets]
            initial["other_variants"] = ", ".join(label for label in labels if label not in presets)
        else:
            initial["variants"] = ", ".join(labels)
        self.initial.update(initial)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("keep_source"):
            if cleaned.get("source_url"):
                self.add_error("source_url", "Give a source URL or reuse the original's, not both.")
            if cleaned.get("source_file"):
                self.add_error("source_file", "Upload a file or reuse the original's, not both.")
        return cleaned

    def to_input(self) -> dict[str, Any]:
        """The input to validate, every field given explicitly so that, as overrides of a
        regeneration, a cleared field replaces the original's value (a cleared seed asks
        for a random one)."""
        data = self.cleaned_data
        result = {field.name: data[field.name] for field in self.spec.fields}
        result["seed"] = data["seed"]
        result["variants"] = self.variant_labels()
        if self.fault_injection:
            result["fail_items"] = _split(data["fail_items"])
            result["delay_ms"] = data["delay_ms"]
        if data.get("keep_source"):
            # Left out, the regeneration keeps the original's stored upload.
            del result["source_url"]
        return result

    def variant_labels(self) -> list[str]:
        data = self.cleaned_data
        if self.spec.variant_presets:
            return list(data["variants"]) + _split(data["other_variants"])
        return _split(data["variants"])

    def error_field(self, name: str) -> str | None:
        """The form field an input error about `name` belongs to."""
        if name == "source_key":
            return "source_file"
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
