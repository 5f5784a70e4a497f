import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import islice
from uuid import UUID

from django.core.management.base import BaseCommand, CommandParser

from generations.models import Generation
from generations.selectors import (
    generation_ids_busy_in_storage,
    generation_storage_keys,
    item_completed_keys,
)
from storage.services import object_delete, object_keys

_GENERATION_KEY = re.compile(r"^generations/([0-9a-f-]{36})/")
BATCH_SIZE = 500
SHOWN = 50


class Command(BaseCommand):
    help = (
        "Compare stored objects with the rows that point to them. Reports objects without "
        "rows and completed items whose objects are missing; --fix deletes the objects "
        "without rows (it never touches rows)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix", action="store_true", help="Delete the objects that no row points to."
        )
        parser.add_argument(
            "--all", action="store_true", help=f"List every finding, not the first {SHOWN}."
        )

    def handle(self, *args: object, **options: object) -> None:
        listed: dict[UUID, set[str]] = defaultdict(set)
        orphans: list[str] = []
        scanned = 0
        for key in object_keys("generations/"):
            scanned += 1
            match = _GENERATION_KEY.match(key)
            if match:
                listed[UUID(match.group(1))].add(key)
            else:
                orphans.append(key)
        for batch in _batches(listed):
            referenced = generation_storage_keys(batch)
            busy = generation_ids_busy_in_storage(batch)
            for generation_id in batch:
                if generation_id not in busy:
                    unreferenced = listed[generation_id] - referenced.get(generation_id, set())
                    orphans.extend(sorted(unreferenced))

        missing: list[tuple[UUID, str]] = []
        every_listed = set().union(*listed.values()) if listed else set()
        ids = Generation.objects.order_by("id").values_list("id", flat=True).iterator()
        for batch in _batches(ids):
            missing.extend(
                (item_id, key)
                for item_id, key in item_completed_keys(batch)
                if key not in every_listed
            )

        self.stdout.write(f"Scanned {scanned} objects belonging to {len(listed)} generations.")
        self._report(f"Objects without rows: {len(orphans)}", orphans, options["all"])
        self._report(
            f"Completed items whose objects are missing: {len(missing)}",
            [f"item {item_id}: {key}" for item_id, key in missing],
            options["all"],
        )
        if not orphans:
            return
        if options["fix"]:
            for key in orphans:
                object_delete(key)
            self.stdout.write(self.style.SUCCESS(f"Deleted {len(orphans)} objects without rows."))
        else:
            self.stdout.write(f"Run with --fix to delete the {len(orphans)} objects without rows.")

    def _report(self, heading: str, lines: list[str], show_all: object) -> None:
        style = self.style.WARNING if lines else self.style.SUCCESS
        self.stdout.write(style(heading))
        shown = lines if show_all else lines[:SHOWN]
        for line in shown:
            self.stdout.write(f"  {line}")
        if len(shown) < len(lines):
            self.stdout.write(f"  ... and {len(lines) - len(shown)} more (--all lists them)")


def _batches(ids: Iterable[UUID]) -> Iterator[list[UUID]]:
    iterator = iter(ids)
    while batch := list(islice(iterator, BATCH_SIZE)):
        yield batch
