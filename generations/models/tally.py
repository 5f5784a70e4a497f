"""Running totals for statistics, kept by the database itself."""

from decimal import Decimal

from django.conf import settings
from django.db import models

from generations.kinds import GenerationKind
from generations.states import GenerationStatus


class GenerationTally(models.Model):
    """Running totals of the ended generations outside the trash, per owner, status, kind
    and error code, so that statistics read a few rows instead of every generation.

    On PostgreSQL a trigger on the generation table keeps them current on every write,
    whatever the code path (migration 0005); nothing else writes them, and other
    databases compute statistics from the generations themselves. Active generations
    (pending, processing) are left out: their cost moves with every item, and they are
    few enough to count live."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    status = models.CharField(max_length=20, choices=GenerationStatus.choices)
    kind = models.CharField(max_length=20, choices=GenerationKind.choices)
    error_code = models.CharField(max_length=50, blank=True)
    generations = models.BigIntegerField(default=0)
    cost_estimate = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    actual_cost = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    timed = models.BigIntegerField(default=0)
    time_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            # Indexed by this constraint, which starts with the owner (a user's statistics).
            models.UniqueConstraint(
                fields=["owner", "status", "kind", "error_code"], name="tally_group_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.generations} {self.status} {self.kind} of user {self.owner_id}"
