"""Validation of a generation's input against its kind's spec (`generations.kinds`):
checks each field, refuses fields the kind does not take, fills in defaults (including a
random seed, so that the stored snapshot replays exactly) and returns the normalised
snapshot stored as `Generation.input`."""

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from generations.errors import InputError
from generations.kinds import KINDS, InputField, KindSpec
from storage.keys import is_valid_variant_label

MAX_VARIANTS = 8
# Inputs every kind takes, beside its own fields.
COMMON_FIELDS = ("seed", "variants")
# Inputs that make a provider fail or slow down on purpose, for tests and demos; only a
# provider that declares `fault_injection` takes them.
FAULT_FIELDS = ("fail_items", "fail_attempts", "transient_fail_items", "fail_rate", "delay_ms")
# Keys Genvault itself adds to a stored snapshot.
DERIVED_FIELDS = ("provider", "model", "source_key")


@dataclass
class _Reader:
    """Reads fields out of a raw input mapping, collecting every error at once."""

    raw: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def integer(self, name: str, default: int, low: float, high: float) -> int:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(name, "Must be a whole number.")
            return default
        if not low <= value <= high:
            self.error(name, f"Must be between {low:g} and {high:g}.")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(name, "Must be a number.")
            return default
        if not low <= value <= high:
            self.error(name, f"Must be between {low:g} and {high:g}.")
            return default
        return float(value)

    def text(self, name: str, *, required: bool, max_chars: int) -> str:
        raw = self.raw.get(name) or ""
        if not isinstance(raw, str):
            self.error(name, "Must be text.")
            return ""
        value = raw.strip()
        if required and not value:
            self.error(name, "This field is required.")
        elif len(value) > max_chars:
            self.error(name, f"Must be at most {max_chars} characters.")
        return value

    def even_size(self, name: str, default: int, low: float, high: float) -> int:
        value = self.integer(name, default, low, high)
        if value % 2:
            self.error(name, "Must be an even number of pixels.")
        return value

    def url(self, name: str, *, max_chars: int) -> str:
        url = self.text(name, required=False, max_chars=max_chars)
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.error(name, "Must be an http(s) URL.")
        return url

    def labels(self, name: str, default: list[str]) -> list[str]:
        value = self.raw.get(name, default)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.error(name, "Must be a list of labels.")
            return default
        labels = [item.strip().lower() for item in value]
        if not 1 <= len(labels) <= MAX_VARIANTS:
            self.error(name, f"Give between 1 and {MAX_VARIANTS} variants.")
        if len(set(labels)) != len(labels):
            self.error(name, "Variant labels must be unique.")
        for label in labels:
            if not is_valid_variant_label(label):
                self.error(
                    name,
                    f"{label!r} is not a valid label: use lowercase letters, digits, - and _.",
                )
        return labels

    def item_refs(self, name: str, labels: list[str]) -> list[str]:
        """Items named as "label:n" or "n" (item n of every variant)."""
        value = self.raw.get(name, [])
        if not isinstance(value, list):
            self.error(name, 'Must be a list such as ["soft:2", 3].')
            return []
        refs = []
        for item in value:
            ref = str(item).strip().lower()
            label, colon, number = ref.rpartition(":")
            if (
                not number.isascii()
                or not number.isdigit()
                or int(number) < 1
                or (colon and not label)
            ):
                self.error(name, f"{item!r} is not an item reference such as 'soft:2' or 3.")
                continue
            if label and label not in labels:
                self.error(name, f"{item!r} names a variant that is not in variants.")
                continue
            refs.append(ref)
        return refs

    def spec_field(self, spec_field: InputField) -> Any:
        name, low, high = spec_field.name, spec_field.low, spec_field.high
        if spec_field.type == "integer":
            return self.integer(name, int(spec_field.default), low, high)
        if spec_field.type == "number":
            return self.number(name, float(spec_field.default), low, high)
        if spec_field.type == "even_size":
            return self.even_size(name, int(spec_field.default), low, high)
        if spec_field.type == "url":
            return self.url(name, max_chars=spec_field.max_chars)
        return self.text(name, required=spec_field.required, max_chars=spec_field.max_chars)


def accepted_fields(spec: KindSpec, *, fault_injection: bool) -> list[str]:
    """Every input field `spec`'s kind takes, with the fault fields when the provider
    takes them."""
    names = [*COMMON_FIELDS, *(field.name for field in spec.fields)]
    return names + list(FAULT_FIELDS) if fault_injection else names


def normalise_input(
    kind: str, raw: dict[str, Any], *, has_upload: bool = False, fault_injection: bool = True
) -> dict[str, Any]:
    """The complete, validated parameter snapshot for `kind`; raises InputError naming
    every bad field, including any field the kind (or, for the fault fields, the
    provider) does not take."""
    if kind not in KINDS:
        raise InputError({"kind": [f"Must be one of {', '.join(KINDS)}."]})
    if not isinstance(raw, dict):
        raise InputError({"input": ["Must be an object."]})
    spec = KINDS[kind]
    reader = _Reader(raw)
    accepted = accepted_fields(spec, fault_injection=fault_injection)
    for name in raw:
        if name in FAULT_FIELDS and name not in accepted:
            reader.error(name, "This provider does not take fault injection.")
        elif name not in accepted:
            reader.error(
                name, f"Unknown field for {spec.label.lower()}; use {', '.join(accepted)}."
            )
    seed = (
        reader.integer("seed", 0, 0, 2**31 - 1)
        if raw.get("seed") is not None
        else secrets.randbelow(2**31)
    )
    labels = reader.labels("variants", list(spec.default_variants))
    snapshot: dict[str, Any] = {"seed": seed, "variants": labels}
    if fault_injection:
        snapshot.update(
            fail_items=reader.item_refs("fail_items", labels),
            fail_attempts=reader.integer("fail_attempts", 1, 1, 10),
            transient_fail_items=reader.item_refs("transient_fail_items", labels),
            fail_rate=reader.number("fail_rate", 0.0, 0.0, 1.0),
            delay_ms=reader.integer("delay_ms", 0, 0, 60_000),
        )
    for spec_field in spec.fields:
        snapshot[spec_field.name] = reader.spec_field(spec_field)
    for name, messages in spec.check(snapshot, has_upload).items():
        for message in messages:
            reader.error(name, message)
    if reader.errors:
        raise InputError(reader.errors)
    return snapshot
