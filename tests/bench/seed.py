"""The reference data set, seeded with `INSERT ... SELECT generate_series` with the
indexes and constraints dropped during the load and rebuilt after it.

At scale 1: 1M generations, 4M variants, 16M items, 1M metadata rows. Owners are skewed
(five heavy users hold 12.5% of the rows, the rest spread evenly), statuses are 90%
completed, 7% failed and 3% processing, and prompts come from a vocabulary with planted
terms of known frequency. Everything is a function of the row number, so a scale always
produces the same data.
"""

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

TABLES = (
    "generations_generation",
    "generations_variant",
    "generations_item",
    "generations_generationmetadata",
)
FULL_SIZE = 1_000_000
# Shares of all generations (in 1/10000) of the five heavy users: 5%, 3%, 2%, 1.5%, 1%.
HEAVY_SHARES = (500, 300, 200, 150, 100)
HEAVY_PREFIX = "bench-heavy-"
STAFF_USERNAME = "bench-staff"
WORKER_USERNAME = "bench-worker"
# Planted terms: RARE_TERM in 1 row of 10,000 (0.01%), COMMON_TERM in 1 of 10 (10%).
RARE_TERM = "zephyrine"
COMMON_TERM = "sunset"
LABELS = ("soft", "medium", "aggressive", "ultra")
VOCABULARY = [
    "coffee",
    "morning",
    "summer",
    "city",
    "bright",
    "calm",
    "bold",
    "ocean",
    "forest",
    "mountain",
    "river",
    "desert",
    "neon",
    "vintage",
    "modern",
    "cozy",
    "energetic",
    "gentle",
    "vivid",
    "golden",
    "silver",
    "crimson",
    "emerald",
    "azure",
    "product",
    "launch",
    "banner",
    "promo",
    "teaser",
    "story",
    "montage",
    "portrait",
    "landscape",
    "close-up",
    "wide",
    "slow-motion",
    "timelapse",
    "aerial",
    "studio",
    "kitchen",
    "garden",
    "street",
    "rooftop",
    "harbour",
    "market",
    "festival",
    "winter",
    "autumn",
    "spring",
    "rain",
    "snow",
    "fog",
    "breeze",
    "fire",
    "light",
    "shadow",
    "reflection",
    "glass",
    "metal",
    "wood",
    "stone",
    "paper",
    "fabric",
    "leather",
    "velvet",
    "cotton",
    "marble",
    "ceramic",
    "bamboo",
    "bicycle",
    "train",
    "airplane",
    "sailboat",
    "lantern",
    "candle",
    "clock",
    "mirror",
    "window",
    "doorway",
    "bridge",
    "tower",
    "castle",
    "village",
    "meadow",
    "canyon",
    "glacier",
    "volcano",
    "island",
    "lagoon",
    "reef",
    "coral",
    "dolphin",
    "falcon",
    "tiger",
    "panda",
    "koala",
    "fox",
    "owl",
    "wolf",
    "horse",
    "butterfly",
    "hummingbird",
    "smartphone",
    "sneaker",
    "watch",
    "perfume",
    "chocolate",
    "lemonade",
    "pastry",
    "noodle",
    "burger",
    "salad",
]

Log = Callable[[str], None]


def _escaped(statement: str) -> str:
    """`%` doubled for psycopg, except in the `%s` placeholders."""
    return statement.replace("%", "%%").replace("%%s", "%s")


def sizes(scale: float) -> dict[str, int]:
    generations = max(int(FULL_SIZE * scale), 200)
    regular_users = max(int(10_000 * scale), 10)
    return {
        "generations": generations,
        "regular_users": regular_users,
        "heavy_users": len(HEAVY_SHARES),
    }


def _owner_expression(first_heavy: int, first_regular: int, regular_users: int) -> str:
    """SQL choosing row i's owner: the heavy users by share, the others round robin."""
    bucket = "((i * 7919) % 10000)"
    cases, bound = [], 0
    for number, share in enumerate(HEAVY_SHARES):
        bound += share
        cases.append(f"WHEN {bucket} < {bound} THEN {first_heavy + number}")
    return f"CASE {' '.join(cases)} ELSE {first_regular} + (i % {regular_users}) END"


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop every index and key of the generation tables; returns the statements that
    rebuild them, keys and indexes before foreign keys."""
    names = list(TABLES)
    constraints = conn.execute(
        """SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
           FROM pg_constraint
           WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('p', 'u', 'f')""",
        [names],
    ).fetchall()
    indexes = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.tablename = ANY(%s) AND NOT EXISTS (
             SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        [names],
    ).fetchall()
    rebuild_keys: list[str] = []
    rebuild_foreign: list[str] = []
    for table, name, kind, definition in sorted(constraints, key=lambda c: c[2] != "f"):
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        statement = f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        (rebuild_foreign if kind == "f" else rebuild_keys).append(statement)
    rebuild_indexes = []
    for name, definition in indexes:
        conn.execute(f'DROP INDEX "{name}"')
        rebuild_indexes.append(definition)
    return rebuild_keys + rebuild_indexes + rebuild_foreign


def seed(conn: psycopg.Connection[Any], *, scale: float, log: Log) -> dict[str, float]:
    """Load the reference data set into a freshly migrated database; returns timings."""
    counts = sizes(scale)
    total = counts["generations"]
    timings: dict[str, float] = {}
    started = time.monotonic()
    conn.execute("SET maintenance_work_mem = '512MB'")
    conn.execute("SET synchronous_commit = off")

    heavy = [f"{HEAVY_PREFIX}{n + 1}" for n in range(len(HEAVY_SHARES))]
    regular = [f"bench-user-{n + 1}" for n in range(counts["regular_users"])]
    usernames = [*heavy, *regular, STAFF_USERNAME, WORKER_USERNAME]
    conn.execute(
        """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
               email, is_staff, is_active, date_joined)
           SELECT '!', u = %s, u, '', '', u || '@bench.invalid', u = %s, true, now()
           FROM unnest(%s::text[]) WITH ORDINALITY AS t(u, n) ORDER BY n""",
        [STAFF_USERNAME, STAFF_USERNAME, usernames],
    )
    ids = dict(
        conn.execute(
            "SELECT username, id FROM auth_user WHERE username = ANY(%s)", [usernames]
        ).fetchall()
    )
    first_heavy = int(ids[heavy[0]])
    first_regular = int(ids[regular[0]])
    assert int(ids[heavy[-1]]) == first_heavy + len(heavy) - 1
    assert int(ids[regular[-1]]) == first_regular + len(regular) - 1

    rebuild = _drop_indexes(conn)
    timings["seed_users_s"] = time.monotonic() - started

    owner = _owner_expression(first_heavy, first_regular, counts["regular_users"])
    vocabulary_size = len(VOCABULARY)
    word = "v[1 + ((i * {a} + {b}) % {n})]"
    words = " || ' ' || ".join(
        word.format(a=a, b=b, n=vocabulary_size) for a, b in ((13, 0), (29, 7), (53, 3), (71, 11))
    )
    # Three years of history, oldest first, a few seconds apart.
    step = 3 * 365 * 86400 / total
    phase = time.monotonic()
    # Only constants built above are interpolated; the rest are parameters.
    generations_statement = f"""
        INSERT INTO generations_generation (id, owner_id, kind, title, prompt, input, provider,
            provider_model, provider_request_id, source_url, source_type, status, total_items,
            completed_items, failed_items, cancelled_items, cost_estimate, actual_cost,
            error_code, error_message, parent_id, created_at, updated_at, started_at,
            completed_at, generation_time_seconds, deleted_at)
        SELECT md5('g' || i)::uuid, owner_id, kind, 'Generation ' || i, prompt,
            jsonb_build_object('prompt', prompt, 'seed', i), 'local', 'local-v1', '', '',
            'none', status, 16,
            CASE status WHEN 'completed' THEN 16 WHEN 'processing' THEN i % 16 ELSE 0 END,
            CASE status WHEN 'failed' THEN 16 ELSE 0 END, 0, 0.16,
            CASE status WHEN 'completed' THEN 0.16 ELSE 0 END,
            CASE status WHEN 'failed' THEN 'provider_error' ELSE '' END,
            CASE status WHEN 'failed' THEN '16 item(s) failed. The provider failed.' ELSE '' END,
            NULL, created, created + interval '45 seconds', created + interval '1 second',
            CASE WHEN status <> 'processing' THEN created + interval '45 seconds' END,
            CASE WHEN status <> 'processing' THEN 20 + i % 50 END,
            -- 0.5% in the trash, deleted within the retention period.
            CASE WHEN i % 200 = 0 THEN now() - interval '5 days' END
        FROM (
            SELECT i, {owner} AS owner_id,
                CASE WHEN (i * 37) % 100 < 90 THEN 'completed'
                     WHEN (i * 37) % 100 < 97 THEN 'failed' ELSE 'processing' END AS status,
                CASE WHEN i % 20 < 12 THEN 'video_ad' WHEN i % 20 < 17 THEN 'speech'
                     ELSE 'image' END AS kind,
                {words}
                    || CASE WHEN i % 10 = 3 THEN ' at {COMMON_TERM}' ELSE '' END
                    || CASE WHEN i % 10000 = 77 THEN ' {RARE_TERM}' ELSE '' END AS prompt,
                now() - interval '3 years' + i * interval '{step:.6f} seconds' AS created
            FROM generate_series(1::bigint, %s) AS i, (SELECT %s::text[] AS v) AS vocabulary
        ) AS rows
        """  # noqa: S608
    conn.execute(_escaped(generations_statement), [total, list(VOCABULARY)])
    timings["seed_generations_s"] = time.monotonic() - phase
    log(f"seeded {total} generations in {timings['seed_generations_s']:.1f} s")

    phase = time.monotonic()
    conn.execute(
        _escaped("""
        INSERT INTO generations_variant (id, generation_id, label, position, status,
            total_items, completed_items, failed_items, cancelled_items, error_code,
            error_message, created_at, updated_at, started_at, completed_at)
        SELECT md5(g.id::text || 'v' || p)::uuid, g.id, (%s::text[])[p + 1], p,
            g.status, 4, LEAST(4, GREATEST(0, g.completed_items - 4 * p)),
            CASE g.status WHEN 'failed' THEN 4 ELSE 0 END, 0, g.error_code,
            CASE g.status WHEN 'failed' THEN '4 item(s) failed. The provider failed.' ELSE '' END,
            g.created_at, g.updated_at, g.started_at, g.completed_at
        FROM generations_generation g, generate_series(0, 3) AS p
        """),
        [list(LABELS)],
    )
    timings["seed_variants_s"] = time.monotonic() - phase
    phase = time.monotonic()
    conn.execute(
        _escaped("""
        INSERT INTO generations_item (id, generation_id, variant_id, number, prompt,
            provider_job_id, provider_status, status, attempts, claim_token, asset_key,
            thumbnail_key, duration_seconds, width, height, file_size, content_type,
            checksum, cost, error_code, error_message, created_at, updated_at, queued_at,
            started_at, completed_at)
        SELECT md5(id::text || 's' || k)::uuid, id, md5(id::text || 'v' || (k / 4))::uuid,
            k % 4 + 1, prompt, '', '', status, CASE status WHEN 'queued' THEN 0 ELSE 1 END,
            '',
            CASE status WHEN 'completed' THEN prefix || '.mp4' ELSE '' END,
            CASE status WHEN 'completed' THEN prefix || '_thumb.jpg' ELSE '' END,
            CASE status WHEN 'completed' THEN 2.0 END,
            CASE status WHEN 'completed' THEN 640 END,
            CASE status WHEN 'completed' THEN 360 END,
            CASE status WHEN 'completed' THEN 250000 + k END,
            CASE status WHEN 'completed' THEN 'video/mp4' ELSE '' END, '',
            CASE status WHEN 'completed' THEN 0.01 ELSE 0 END,
            CASE status WHEN 'failed' THEN 'provider_error' ELSE '' END,
            CASE status WHEN 'failed' THEN 'The provider failed.' ELSE '' END,
            created_at, updated_at, created_at, started_at,
            CASE WHEN status IN ('completed', 'failed') THEN completed_at END
        FROM (
            SELECT g.id, k, left(g.prompt, 80) AS prompt, g.created_at, g.updated_at,
                g.started_at, coalesce(g.completed_at, g.updated_at) AS completed_at,
                CASE g.status WHEN 'completed' THEN 'completed' WHEN 'failed' THEN 'failed'
                     ELSE CASE WHEN k < g.completed_items THEN 'completed' ELSE 'queued' END
                END AS status,
                'generations/' || g.id || '/' || (%s::text[])[k / 4 + 1] || '/item_'
                    || (k % 4 + 1) AS prefix
            FROM generations_generation g, generate_series(0, 15) AS k
        ) AS rows
        """),
        [list(LABELS)],
    )
    timings["seed_items_s"] = time.monotonic() - phase
    log(f"seeded {16 * total} items in {timings['seed_items_s']:.1f} s")
    phase = time.monotonic()
    # Every seeded generation has been through its stages: its prompts are planned.
    prompts = {label: [f"{label} item {n}" for n in range(1, 5)] for label in LABELS}
    conn.execute(
        """
        INSERT INTO generations_generationmetadata (generation_id, analysis, transformation,
            prompts, evaluation, created_at, updated_at)
        SELECT id, '{"text": {"words": 4}}', '{"variants": ["soft", "medium", "aggressive",
            "ultra"]}', %s::jsonb, CASE status WHEN 'processing' THEN '{}'::jsonb
            ELSE jsonb_build_object('success_rate', completed_items / 16.0) END,
            created_at, updated_at
        FROM generations_generation
        """,
        [json.dumps(prompts)],
    )
    timings["seed_metadata_s"] = time.monotonic() - phase

    phase = time.monotonic()
    for statement in rebuild:
        conn.execute(statement)
    timings["seed_indexes_s"] = time.monotonic() - phase
    log(f"rebuilt {len(rebuild)} indexes and keys in {timings['seed_indexes_s']:.1f} s")
    phase = time.monotonic()
    conn.execute("VACUUM ANALYZE")
    timings["seed_vacuum_s"] = time.monotonic() - phase
    timings["seed_total_s"] = time.monotonic() - started
    log(f"seed done in {timings['seed_total_s']:.1f} s")
    return timings
