from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from generations.models import Generation
from generations.purge import PURGE_BATCH_SIZE, generations_purge_expired
from generations.selectors import trash_cutoff


class Command(BaseCommand):
    help = (
        "Permanently remove generations that have been in the trash longer than "
        "TRASH_RETENTION_DAYS, with their stored objects. Beat runs this hourly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be purged."
        )
        parser.add_argument("--batch-size", type=int, default=PURGE_BATCH_SIZE)

    def handle(self, *args: object, **options: object) -> None:
        batch_size = options["batch_size"]
        if not isinstance(batch_size, int) or batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if options["dry_run"]:
            expired = Generation.objects.filter(deleted_at__lt=trash_cutoff()).aggregate(
                n=Count("id")
            )["n"]
            self.stdout.write(f"{expired} generations are past retention and would be purged.")
            return
        purged = generations_purge_expired(batch_size=batch_size)
        self.stdout.write(self.style.SUCCESS(f"Purged {purged} generations."))
