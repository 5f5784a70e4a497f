"""The event log: one row per thing that happened to a generation, in order.

On PostgreSQL a trigger stamps each event with its transaction's id, so that the outbox
reader can hand out events in commit order (see generations.events.events_after).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TRANSACTION_ID_SQL = """
CREATE FUNCTION generations_event_transaction() RETURNS trigger AS $$
BEGIN
    NEW.transaction_id := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER generations_event_transaction BEFORE INSERT ON generations_event
FOR EACH ROW EXECUTE FUNCTION generations_event_transaction();
"""
REVERSE_SQL = """
DROP TRIGGER generations_event_transaction ON generations_event;
DROP FUNCTION generations_event_transaction();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0008_add_attempt_log"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="last_event_sequence",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("generation_id", models.UUIDField()),
                ("sequence", models.PositiveIntegerField()),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("created", "Created"),
                            ("dispatched", "Sent to the workers"),
                            ("started", "Started"),
                            ("item_started", "Item started"),
                            ("item_completed", "Item completed"),
                            ("item_failed", "Item failed"),
                            ("item_retried", "Item queued again"),
                            ("item_cancelled", "Item stopped by the cancel"),
                            ("cancel_requested", "Cancel requested"),
                            ("cancelled", "Cancelled"),
                            ("completed", "Completed"),
                            ("partial_success", "Ended with some items failed"),
                            ("failed", "Failed"),
                            ("retried", "Retried"),
                            ("regenerated", "Regenerated"),
                            ("deleted", "Moved to the trash"),
                            ("restored", "Restored"),
                            ("purged", "Purged"),
                        ],
                        max_length=30,
                    ),
                ),
                (
                    "actor",
                    models.CharField(
                        choices=[("user", "Its owner"), ("staff", "Staff"), ("system", "Genvault")],
                        default="system",
                        max_length=10,
                    ),
                ),
                ("payload", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField()),
                ("transaction_id", models.BigIntegerField(blank=True, editable=False, null=True)),
                (
                    "actor_user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["generation_id", "sequence"],
                "indexes": [
                    models.Index(fields=["transaction_id", "id"], name="event_outbox"),
                    models.Index(fields=["owner", "id"], name="event_owner"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("generation_id", "sequence"), name="event_sequence_unique"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "type__in",
                                [
                                    "created",
                                    "dispatched",
                                    "started",
                                    "item_started",
                                    "item_completed",
                                    "item_failed",
                                    "item_retried",
                                    "item_cancelled",
                                    "cancel_requested",
                                    "cancelled",
                                    "completed",
                                    "partial_success",
                                    "failed",
                                    "retried",
                                    "regenerated",
                                    "deleted",
                                    "restored",
                                    "purged",
                                ],
                            )
                        ),
                        name="event_type_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("actor__in", ["user", "staff", "system"])),
                        name="event_actor_valid",
                    ),
                ],
            },
        ),
        migrations.RunPython(
            _on_postgresql(TRANSACTION_ID_SQL), _on_postgresql(REVERSE_SQL), elidable=False
        ),
    ]
