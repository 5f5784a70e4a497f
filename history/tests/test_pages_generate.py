"""The generate page: one form per kind, errors next to their fields, the active limit,
and edit-and-regenerate."""

import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from generations.models import Generation
from generations.tests.factories import GenerationFactory
from history.tests.conftest import make_images

pytestmark = pytest.mark.django_db

COMMON = {"title": "", "seed": "", "fail_items": "", "delay_ms": "0"}
VIDEO = {
    **COMMON,
    "kind": "video_ad",
    "title": "Pasta night",
    "prompt": "A family cooking pasta",
    "variants": ["soft", "ultra"],
    "other_variants": "calm",
    "scenes_per_variant": "2",
    "scene_seconds": "1",
    "source_url": "",
    "width": "160",
    "height": "90",
    "fps": "12",
}
SPEECH = {
    **COMMON,
    "kind": "speech",
    "text": (
        "Welcome to the spring edition of our kitchen show.\n\n"
        "Thanks for listening to all of it today."
    ),
    "words_per_minute": "160",
    "variants": "narrator, calm",
}
IMAGE = {
    **COMMON,
    "kind": "image",
    "prompt": "A red kite",
    "images_per_variant": "2",
    "variants": "default",
    "width": "64",
    "height": "64",
}


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def text(response):
    return response.content.decode()


def field_errors(response, name):
    """The messages shown next to field `name`."""
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', text(response))
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


# The page -----------------------------------------------------------------------------


def test_generate_starts_with_the_video_ad_form_and_its_defaults(client):
    response = client.get("/generate")

    body = text(response)
    assert response.status_code == 200
    assert "<h1>New generation</h1>" in body
    assert 'href="/generate?kind=video_ad" aria-current="page">Video ad</a>' in body
    assert 'href="/generate?kind=speech">Speech</a>' in body
    assert '<input type="hidden" name="kind" value="video_ad">' in body
    for label in ("Title", "Prompt", "Scenes per variant", "Seconds per scene", "Source URL"):
        assert f">{label}</label>" in body
    assert "<legend>Variants</legend>" in body
    for variant in ("soft", "medium", "aggressive", "ultra"):
        assert re.search(rf'value="{variant}"[^>]*checked', body)
    assert 'name="scenes_per_variant" value="4"' in body
    assert 'name="width" value="640"' in body
    assert 'type="file" name="source_file"' in body
    assert "<summary>Advanced settings</summary>" in body
    assert 'enctype="multipart/form-data"' in body
    assert "keep_source" not in body


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("speech", ["text", "words_per_minute", "variants"]),
        ("image", ["prompt", "images_per_variant", "variants", "width", "height"]),
    ],
)
def test_each_kind_has_its_own_form(client, kind, fields):
    body = text(client.get(f"/generate?kind={kind}"))

    assert f'<input type="hidden" name="kind" value="{kind}">' in body
    assert f'href="/generate?kind={kind}" aria-current="page"' in body
    for name in fields:
        assert f'<label for="id_{name}">' in body
    assert 'name="scenes_per_variant"' not in body


def test_an_unknown_kind_falls_back_to_the_video_ad(client):
    assert 'name="kind" value="video_ad"' in text(client.get("/generate?kind=opera"))


# Submitting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "labels", "items"),
    [
        (VIDEO, ["soft", "ultra", "calm"], 6),
        (SPEECH, ["narrator", "calm"], 4),
        (IMAGE, ["default"], 2),
    ],
)
def test_each_kind_submits_and_goes_to_the_new_generation(client, owner, sent, data, labels, items):
    response = client.post("/generate", data)

    generation = Generation.objects.get(owner=owner)
    assert response.status_code == 302
    assert response["Location"] == f"/generations/{generation.id}"
    assert generation.kind == data["kind"]
    assert generation.status == "pending"
    assert generation.input["variants"] == labels
    assert generation.total_items == items
    assert generation.parent is None
    assert generation.input["seed"] >= 0


def test_a_submitted_generation_is_announced(client):
    client.post("/generate", IMAGE)

    body = text(client.get("/history"))
    assert "Generation submitted: 2 images queued." in body


def test_the_given_title_and_seed_are_kept(client, owner):
    client.post("/generate", {**IMAGE, "title": "Kite", "seed": "42"})

    generation = Generation.objects.get(owner=owner)
    assert generation.title == "Kite"
    assert generation.input["seed"] == 42


def test_a_video_ad_from_an_uploaded_file_needs_no_prompt(client, owner):
    upload = SimpleUploadedFile("clip.mp4", b"not really a video", content_type="video/mp4")

    response = client.post("/generate", {**VIDEO, "prompt": "", "source_file": upload})

    generation = Generation.objects.get(owner=owner)
    assert response["Location"] == f"/generations/{generation.id}"
    assert generation.source_type == "upload"
    assert generation.input["source_key"].endswith(".mp4")


def test_video_ad_fail_items_and_delay_reach_the_input(client, owner):
    client.post("/generate", {**VIDEO, "fail_items": "soft:2, 1", "delay_ms": "5"})

    snapshot = Generation.objects.get(owner=owner).input
    assert snapshot["fail_items"] == ["soft:2", "1"]
    assert snapshot["delay_ms"] == 5


# Errors -------------------------------------------------------------------------------


def test_errors_appear_next_to_their_fields(client, owner):
    response = client.post(
        "/generate", {**VIDEO, "prompt": "", "scenes_per_variant": "99", "width": "161"}
    )

    body = text(response)
    assert response.status_code == 200
    assert not Generation.objects.exists()
    assert field_errors(response, "prompt") == ["This field is required."]
    assert field_errors(response, "scenes_per_variant") == ["Must be between 1 and 12."]
    assert field_errors(response, "width") == ["Must be an even number of pixels."]
    assert re.search(r'name="scenes_per_variant"[^>]*aria-invalid="true"', body)
    assert re.search(
        r'name="scenes_per_variant"[^>]*aria-describedby="id_scenes_per_variant_error"', body
    )
    assert '<details class="advanced" open>' in body  # width is an advanced field
    assert 'role="alert"' in body
    assert '<a href="#id_scenes_per_variant">Scenes per variant: Must be between' in body
    # What was typed is kept.
    assert 'name="scenes_per_variant" value="99"' in body


def test_form_type_errors_are_caught_before_the_service(client, owner):
    response = client.post("/generate", {**IMAGE, "images_per_variant": "two"})

    assert field_errors(response, "images_per_variant") == ["Enter a whole number."]
    assert not Generation.objects.exists()


def test_missing_required_text_of_speech_and_image(client):
    assert field_errors(client.post("/generate", {**SPEECH, "text": ""}), "text") == [
        "This field is required."
    ]
    assert field_errors(client.post("/generate", {**IMAGE, "prompt": " "}), "prompt") == [
        "This field is required."
    ]


def test_variant_errors_go_to_the_variants_field(client):
    response = client.post("/generate", {**VIDEO, "variants": [], "other_variants": "Not OK!"})

    assert any("is not a valid label" in error for error in field_errors(response, "variants"))

    response = client.post("/generate", {**IMAGE, "variants": ",,"})
    assert field_errors(response, "variants") == ["Give between 1 and 8 variants."]


def test_a_bad_source_url_is_explained(client):
    response = client.post("/generate", {**VIDEO, "source_url": "ftp://example.com/a.mp4"})

    assert field_errors(response, "source_url") == ["Must be an http(s) URL."]


def test_the_active_limit_is_a_form_level_error(client, owner, settings):
    settings.GENVAULT_MAX_ACTIVE_GENERATIONS = 1
    make_images(owner, run=False)

    response = client.post("/generate", IMAGE)

    body = text(response)
    assert response.status_code == 200
    assert Generation.objects.filter(owner=owner).count() == 1
    assert "You already have 1 generations pending or processing" in body
    assert 'role="alert"' in body
    assert 'value="A red kite"' not in body  # a textarea keeps it as content instead
    assert "A red kite</textarea>" in body


# Edit and regenerate ------------------------------------------------------------------


def test_edit_goes_to_the_form_of_its_kind_prefilled(client, owner):
    original = make_images(owner, run=False, images_per_variant=3)
    Generation.objects.filter(id=original.id).update(title="Kites")

    response = client.get(f"/generations/{original.id}/edit")

    assert response.status_code == 302
    assert response["Location"] == f"/generate?kind=image&from={original.id}"

    body = text(client.get(response["Location"]))
    assert "<h1>Edit and regenerate</h1>" in body
    assert 'class="tabs"' not in body
    assert f'<input type="hidden" name="from" value="{original.id}">' in body
    assert 'name="title" value="Kites"' in body
    assert "A red kite over the dunes</textarea>" in body
    assert 'name="images_per_variant" value="3"' in body
    assert 'name="variants" value="a, b"' in body
    assert f'name="seed" value="{original.input["seed"]}"' in body


def test_edit_of_a_video_ad_checks_its_variants(client, owner):
    original = GenerationFactory(
        owner=owner,
        kind="video_ad",
        input={"variants": ["ultra", "calm"], "prompt": "Pasta", "scenes_per_variant": 2},
    )

    body = text(client.get(f"/generate?from={original.id}"))

    assert re.search(r'value="ultra"[^>]*checked', body)
    assert not re.search(r'value="soft"[^>]*checked', body)
    assert 'name="other_variants" value="calm"' in body


def test_submitting_an_edit_creates_a_child_with_the_changes(client, owner):
    original = make_images(owner, run=False)
    data = {
        **IMAGE,
        "from": str(original.id),
        "title": "Kite, bigger",
        "prompt": "A red kite, closer",
        "variants": "a, b",
        "seed": str(original.input["seed"]),
    }

    response = client.post("/generate", data)

    child = Generation.objects.get(parent=original)
    assert response["Location"] == f"/generations/{child.id}"
    assert child.title == "Kite, bigger"
    assert child.prompt == "A red kite, closer"
    assert child.input["seed"] == original.input["seed"]
    assert child.input["variants"] == ["a", "b"]
    assert child.input["images_per_variant"] == 2


def test_an_edit_with_the_seed_cleared_gets_a_new_seed(client, owner, monkeypatch):
    original = make_images(owner, run=False)
    monkeypatch.setattr("generations.inputs.secrets.randbelow", lambda _: 12345)

    client.post("/generate", {**IMAGE, "from": str(original.id), "seed": ""})

    assert Generation.objects.get(parent=original).input["seed"] == 12345


def test_an_edit_with_errors_stays_an_edit(client, owner):
    original = make_images(owner, run=False)

    response = client.post("/generate", {**IMAGE, "from": str(original.id), "width": "65"})

    assert field_errors(response, "width") == ["Must be an even number of pixels."]
    assert f'name="from" value="{original.id}"' in text(response)
    assert not Generation.objects.filter(parent=original).exists()


def test_an_edit_reuses_the_original_uploaded_source_unless_told_not_to(client, owner):
    upload = SimpleUploadedFile("clip.mp4", b"bytes of a clip", content_type="video/mp4")
    client.post("/generate", {**VIDEO, "prompt": "", "source_file": upload})
    original = Generation.objects.get(owner=owner)

    body = text(client.get(f"/generate?from={original.id}"))
    assert re.search(r'name="keep_source"[^>]*checked', body)

    data = {**VIDEO, "prompt": "", "from": str(original.id)}
    response = client.post("/generate", {**data, "keep_source": "on"})

    child = Generation.objects.get(parent=original)
    assert response["Location"] == f"/generations/{child.id}"
    assert child.source_type == "upload"
    assert child.input["source_key"].startswith(f"generations/{child.id}/")

    response = client.post("/generate", data)  # keep_source cleared, no prompt
    assert field_errors(response, "prompt") == ["This field is required."]

    response = client.post(
        "/generate", {**data, "keep_source": "on", "source_url": "https://example.com/a.mp4"}
    )
    assert field_errors(response, "source_url") == [
        "Give a source URL or reuse the original&#x27;s, not both."
    ]


def test_an_edit_with_a_new_upload_is_still_a_child(client, owner):
    original = make_images(owner, run=False)
    video = GenerationFactory(owner=owner, kind="video_ad", input={"prompt": "Pasta"})
    upload = SimpleUploadedFile("new.mp4", b"new clip", content_type="video/mp4")

    client.post("/generate", {**VIDEO, "from": str(video.id), "source_file": upload})

    child = Generation.objects.get(parent=video)
    assert child.source_type == "upload"
    assert original.regenerations.count() == 0


@pytest.mark.parametrize("value", ["not-a-uuid", str(uuid.uuid4())])
def test_editing_an_unknown_generation_is_not_found(client, value):
    assert client.get(f"/generate?from={value}").status_code == 404
    assert client.post("/generate", {**IMAGE, "from": value}).status_code == 404


def test_editing_another_users_generation_is_not_found(client, other_user):
    theirs = make_images(other_user, run=False)

    assert client.get(f"/generate?from={theirs.id}").status_code == 404
    assert client.get(f"/generations/{theirs.id}/edit").status_code == 404
    response = client.post("/generate", {**IMAGE, "from": str(theirs.id)})
    assert response.status_code == 404
    assert not Generation.objects.filter(parent=theirs).exists()


def test_anonymous_visitors_cannot_submit(owner):
    response = Client().post("/generate", IMAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Generation.objects.exists()
