import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from generations.models import Generation
from generations.tests.factories import ItemFactory, UserFactory
from storage.services import object_exists, object_save

pytestmark = pytest.mark.django_db


def _run(*arguments):
    out = io.StringIO()
    call_command(*arguments, stdout=out)
    return out.getvalue()


def test_generate_submits_for_the_first_superuser_by_default(
    sent, django_capture_on_commit_callbacks
):
    admin = UserFactory(username="boss", is_superuser=True, is_staff=True)

    with django_capture_on_commit_callbacks(execute=True):
        output = _run(
            "generate", "--kind", "image", "--prompt", "A lighthouse", "--variants", "a,b"
        )

    generation = Generation.objects.get()
    assert generation.owner == admin
    assert generation.total_items == 2
    assert f"Submitted image {generation.id}" in output
    assert len(sent) == 1


def test_generate_names_the_bad_field(sent):
    UserFactory(is_superuser=True)

    with pytest.raises(CommandError, match="scenes_per_variant: Must be between 1 and 12"):
        _run("generate", "--input", '{"scenes_per_variant": 40}')


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--input", "{not json"], "not valid JSON"),
        (["--input", "[1, 2]"], "must be a JSON object"),
        (["--user", "nobody"], "No user named 'nobody'"),
    ],
)
def test_generate_refuses_bad_options(sent, arguments, message):
    UserFactory(is_superuser=True)

    with pytest.raises(CommandError, match=message):
        _run("generate", *arguments)


def test_generate_without_any_superuser_says_what_to_do(sent):
    with pytest.raises(CommandError, match="No superuser exists"):
        _run("generate")
    assert not Generation.objects.exists()


def test_repair_storage_reports_and_fixes_orphans_only_with_fix():
    item = ItemFactory(
        status="completed",
        asset_key="",
        thumbnail_key="",
        variant__label="soft",
        variant__generation__status="completed",
    )
    generation_id = item.generation_id
    kept = f"generations/{generation_id}/soft/scene_1.mp4"
    missing = f"generations/{generation_id}/soft/scene_1_thumb.jpg"
    type(item).objects.filter(id=item.id).update(asset_key=kept, thumbnail_key=missing)
    object_save(key=kept, content=io.BytesIO(b"video"))
    stray = f"generations/{generation_id}/soft/scene_9.mp4"
    unknown = f"generations/{uuid.uuid4()}/soft/scene_1.mp4"
    for key in (stray, unknown, "generations/notes.txt"):
        object_save(key=key, content=io.BytesIO(b"x"))

    report = _run("repair_storage")

    assert "Objects without rows: 3" in report
    assert stray in report
    assert unknown in report
    assert "Completed items whose objects are missing: 1" in report
    assert missing in report
    assert object_exists(stray)

    fixed = _run("repair_storage", "--fix")

    assert "Deleted 3 objects without rows." in fixed
    assert not object_exists(stray)
    assert not object_exists(unknown)
    assert object_exists(kept)


def test_repair_storage_leaves_running_generations_alone():
    item = ItemFactory(status="processing", variant__label="soft")
    in_flight = f"generations/{item.generation_id}/soft/scene_1.mp4"
    object_save(key=in_flight, content=io.BytesIO(b"being written"))

    report = _run("repair_storage", "--fix")

    assert "Objects without rows: 0" in report
    assert object_exists(in_flight)


def test_purge_deleted_counts_then_purges():
    expired = ItemFactory().generation
    Generation.objects.filter(id=expired.id).update(deleted_at=timezone.now() - timedelta(days=90))
    recent = ItemFactory().generation
    Generation.objects.filter(id=recent.id).update(deleted_at=timezone.now())

    assert "1 generations are past retention" in _run("purge_deleted", "--dry-run")
    assert Generation.objects.count() == 2

    assert "Purged 1 generations." in _run("purge_deleted")
    assert list(Generation.objects.values_list("id", flat=True)) == [recent.id]


def test_purge_deleted_refuses_a_bad_batch_size():
    with pytest.raises(CommandError, match="at least 1"):
        _run("purge_deleted", "--batch-size", "0")
