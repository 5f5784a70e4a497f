import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_creates_a_superuser_with_a_printed_password(capsys, settings):
    settings.SUPERUSER_PASSWORD = ""

    call_command("ensure_admin")

    output = capsys.readouterr().out
    admin = get_user_model().objects.get(username="admin")
    password = output.split("password ")[1].split()[0]
    assert admin.is_superuser
    assert admin.check_password(password)


def test_uses_credentials_from_the_settings(settings):
    settings.SUPERUSER_USERNAME = "ops"
    settings.SUPERUSER_PASSWORD = "a long passphrase"

    call_command("ensure_admin")

    assert get_user_model().objects.get(username="ops").check_password("a long passphrase")


def test_does_nothing_when_a_superuser_exists(capsys):
    get_user_model().objects.create_superuser("root", password="x")

    call_command("ensure_admin")

    assert "already exists" in capsys.readouterr().out
    assert get_user_model().objects.count() == 1


def test_refuses_to_promote_an_existing_user(owner, settings):
    settings.SUPERUSER_USERNAME = owner.username

    with pytest.raises(CommandError, match="not a superuser"):
        call_command("ensure_admin")


def test_create_api_key_prints_a_working_key(owner, capsys):
    from history.services import api_key_authenticate

    call_command("create_api_key", owner.username, "--name", "laptop")

    raw_key = capsys.readouterr().out.strip()
    assert api_key_authenticate(raw_key).user == owner


def test_create_api_key_for_an_unknown_user_is_an_error():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_key", "ghost")
