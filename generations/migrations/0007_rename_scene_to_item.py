"""One vocabulary: a generation's media items are `Item` rows (a kind names them scenes,
tracks or images), and a variant's counters carry the generation's names.

Constraints and indexes keep their definitions and only change name: on PostgreSQL by
renaming them in place, so no index is rebuilt and no table is scanned; SQLite rebuilds
the table either way. Stored inputs rename the fault-injection keys the same way.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F, Q

RENAMED_COUNTERS = [
    ("total_scenes", "total_items"),
    ("scenes_completed", "completed_items"),
    ("scenes_failed", "failed_items"),
    ("scenes_cancelled", "cancelled_items"),
]
RENAMED_INDEXES = [
    ("scene_processing_started", "item_processing_started"),
    ("scene_generation_status", "item_generation_status"),
    ("scene_failed_code", "item_failed_code"),
    ("scene_first_thumbnail", "item_first_thumbnail"),
]
RENAMED_INPUT_KEYS = [
    ("fail_scenes", "fail_items"),
    ("transient_fail_scenes", "transient_fail_items"),
]

ITEM_STATUSES = ["queued", "processing", "completed", "failed", "cancelled"]


def item_constraints():
    return {
        "scene_number_unique": models.UniqueConstraint(
            fields=["variant", "number"], name="item_number_unique"
        ),
        "scene_status_valid": models.CheckConstraint(
            condition=Q(status__in=ITEM_STATUSES), name="item_status_valid"
        ),
        "scene_cost_non_negative": models.CheckConstraint(
            condition=Q(cost__gte=0), name="item_cost_non_negative"
        ),
    }


def _fix_sqlite_remove(constraint, name):
    clone = constraint.clone()
    clone.name = name
    return clone


def rename_constraints_forward(apps, schema_editor):
    item = apps.get_model("generations", "Item")
    table = schema_editor.quote_name(item._meta.db_table)
    for old, constraint in item_constraints().items():
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE {table} RENAME CONSTRAINT "
                f"{schema_editor.quote_name(old)} TO {schema_editor.quote_name(constraint.name)}"
            )
        else:
            schema_editor.remove_constraint(item, _fix_sqlite_remove(constraint, old))
            schema_editor.add_constraint(item, constraint)


def rename_constraints_backward(apps, schema_editor):
    item = apps.get_model("generations", "Item")
    table = schema_editor.quote_name(item._meta.db_table)
    for old, constraint in item_constraints().items():
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"ALTER TABLE {table} RENAME CONSTRAINT "
                f"{schema_editor.quote_name(constraint.name)} TO {schema_editor.quote_name(old)}"
            )
        else:
            schema_editor.remove_constraint(item, constraint)
            schema_editor.add_constraint(item, _fix_sqlite_remove(constraint, old))


def _rename_input_keys(apps, pairs):
    generation = apps.get_model("generations", "Generation")
    for old, new in pairs:
        rows = generation.objects.filter(input__has_key=old).only("id", "input")
        for row in rows.iterator(chunk_size=2000):
            row.input[new] = row.input.pop(old)
            generation.objects.filter(id=row.id).update(input=row.input)


def rename_input_keys_forward(apps, schema_editor):
    _rename_input_keys(apps, RENAMED_INPUT_KEYS)


def rename_input_keys_backward(apps, schema_editor):
    _rename_input_keys(apps, [(new, old) for old, new in RENAMED_INPUT_KEYS])


class Migration(migrations.Migration):
    dependencies = [("generations", "0006_add_active_stats_index")]

    operations = [
        migrations.RenameModel("Scene", "Item"),
        *(
            migrations.AlterField(
                model_name="item",
                name=parent,
                field=models.ForeignKey(
                    db_index=False,
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="items",
                    to=f"generations.{parent}",
                ),
            )
            for parent in ("generation", "variant")
        ),
        *(migrations.RenameField("variant", old, new) for old, new in RENAMED_COUNTERS),
        # The database's check follows its renamed columns by itself; Django's state
        # learns the new field names.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint("variant", "variant_counters_within_total"),
                migrations.AddConstraint(
                    "variant",
                    models.CheckConstraint(
                        condition=Q(
                            total_items__gte=F("completed_items")
                            + F("failed_items")
                            + F("cancelled_items")
                        ),
                        name="variant_counters_within_total",
                    ),
                ),
            ]
        ),
        *(
            migrations.RenameIndex("item", new_name=new, old_name=old)
            for old, new in RENAMED_INDEXES
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(rename_constraints_forward, rename_constraints_backward)
            ],
            state_operations=[
                op
                for old, constraint in item_constraints().items()
                for op in (
                    migrations.RemoveConstraint("item", old),
                    migrations.AddConstraint("item", constraint),
                )
            ],
        ),
        migrations.RunPython(rename_input_keys_forward, rename_input_keys_backward),
    ]
