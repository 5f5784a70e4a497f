"""Trigram indexes for the history search (`?q=`), PostgreSQL only.

Django's `icontains` compiles to `UPPER(col::text) LIKE UPPER('%term%')`, so each index
covers exactly that expression; PostgreSQL can then combine the three with a bitmap OR.
SQLite has no trigram indexes and searches with a plain scan of the user's rows.
"""

from django.db import migrations

SEARCHED_COLUMNS = ("title", "prompt", "source_url")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS gen_{column}_trgm ON generations_generation "
            f"USING gin (UPPER({column}::text) gin_trgm_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in SEARCHED_COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS gen_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("generations", "0002_add_scene_claim_token")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
