import json
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.errors import InputError
from generations.kinds import GenerationKind, kind_spec
from generations.models import Generation
from generations.selectors import generation_progress
from generations.services import generation_create
from generations.states import FINAL_GENERATION_STATUSES, GenerationStatus

BAR_WIDTH = 30
POLL_SECONDS = 0.5


class Command(BaseCommand):
    help = "Submit a generation from the command line; --wait follows it to the end."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", choices=GenerationKind.values, default="video_ad")
        parser.add_argument("--prompt", help="What to generate (default: a demo prompt).")
        parser.add_argument("--text", help="Speech: the text to speak (default: a demo text).")
        parser.add_argument("--title", default="")
        parser.add_argument("--variants", help="Comma-separated variant labels.")
        parser.add_argument("--source-url", help="Video ad: a source video to analyse.")
        parser.add_argument(
            "--input",
            default="{}",
            help='More input as JSON, e.g. \'{"seed": 7, "delay_ms": 500}\'.',
        )
        parser.add_argument(
            "--provider", help="Provider name (default: GENVAULT_DEFAULT_PROVIDER)."
        )
        parser.add_argument("--model", help="Provider model (default: the provider's default).")
        parser.add_argument("--user", help="Owner's username (default: the first superuser).")
        parser.add_argument("--wait", action="store_true", help="Show progress until it ends.")
        parser.add_argument("--timeout", type=float, default=900, help="Seconds --wait waits.")

    def handle(self, *args: object, **options: Any) -> None:
        kind = GenerationKind(options["kind"])
        generation_input = self._input(kind, options)
        try:
            generation = generation_create(
                owner=self._owner(options["user"]),
                kind=kind,
                input=generation_input,
                title=options["title"],
                provider=options["provider"],
                model=options["model"],
            )
        except InputError as exc:
            details = "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.fields.items())
            raise CommandError(f"Invalid input: {details}") from exc
        self.stdout.write(
            f"Submitted {generation.get_kind_display().lower()} {generation.id} "
            f"({kind_spec(generation.kind).count(generation.total_items)}, "
            f"estimated cost {generation.cost_estimate})."
        )
        if options["wait"]:
            self._follow(generation, timeout=options["timeout"])

    def _input(self, kind: GenerationKind, options: dict[str, Any]) -> dict[str, Any]:
        try:
            extra = json.loads(options["input"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise CommandError("--input must be a JSON object.")
        spec = kind_spec(kind)
        given = options[spec.text_field]
        if options["source_url"] and spec.accepts_source:
            extra.setdefault("source_url", options["source_url"])
            if given:
                extra.setdefault(spec.text_field, given)
        else:
            extra.setdefault(spec.text_field, given or spec.example_text)
        if options["variants"]:
            extra["variants"] = [label.strip() for label in options["variants"].split(",")]
        return extra

    def _owner(self, username: str | None) -> Any:
        users = get_user_model().objects
        if username:
            try:
                return users.get(username=username)
            except users.model.DoesNotExist:
                raise CommandError(f"No user named {username!r}.") from None
        owner = users.filter(is_superuser=True).order_by("id").first()
        if owner is None:
            raise CommandError("No superuser exists; pass --user or run `make run` once.")
        return owner

    def _follow(self, generation: Generation, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        progress = generation
        while time.monotonic() < deadline:
            progress = generation_progress(generation.id)
            self.stdout.write(f"\r{_bar(progress)}", ending="")
            self.stdout.flush()
            if progress.status in FINAL_GENERATION_STATUSES:
                break
            time.sleep(POLL_SECONDS)
        self.stdout.write("")
        generation.refresh_from_db()
        if generation.status not in FINAL_GENERATION_STATUSES:
            raise CommandError(
                f"Still {generation.status} after {timeout:.0f} s; is a worker running "
                "(`make run`)? The generation keeps its place in the queue."
            )
        elapsed = generation.generation_time_seconds or 0.0
        summary = (
            f"{generation.get_status_display()} in {elapsed:.1f} s, cost {generation.actual_cost}."
        )
        if generation.status == GenerationStatus.COMPLETED:
            self.stdout.write(self.style.SUCCESS(summary))
        else:
            raise CommandError(f"{summary} {generation.error_message}".strip())


def _bar(generation: Generation) -> str:
    ended = generation.completed_items + generation.failed_items + generation.cancelled_items
    total = generation.total_items or 1
    filled = BAR_WIDTH * ended // total
    failed = f", {generation.failed_items} failed" if generation.failed_items else ""
    noun = kind_spec(generation.kind).noun(generation.total_items)
    return (
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {ended * 100 // total:3d}% "
        f"{ended}/{generation.total_items} {noun}{failed} · {generation.status:<15}"
    )
