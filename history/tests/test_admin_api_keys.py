import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from history.models import ApiKey
from history.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:history_apikey_changelist")


def grant(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="history", codename__in=codenames)
    )


@pytest.fixture
def staff_client(client, staff_user):
    grant(staff_user, "view_apikey", "change_apikey")
    client.force_login(staff_user)
    return client


@pytest.fixture
def keys(owner, other_user):
    return [
        api_key_create(user=owner, name="laptop"),
        api_key_create(user=owner, name="CI pipeline"),
        api_key_create(user=other_user, name="phone"),
    ]


def test_changelist_renders_for_staff_without_raw_keys(staff_client, keys):
    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    for api_key, raw_key in keys:
        assert api_key.name in page
        assert api_key.prefix in page
        assert raw_key not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "revoked"}, ["laptop"]),
        ({"status": "active"}, ["CI pipeline", "phone"]),
        ({"q": "other"}, ["phone"]),
    ],
)
def test_changelist_filters_by_status_and_searches_by_user(staff_client, keys, query, expected):
    api_key_revoke(api_key=keys[0][0])

    response = staff_client.get(CHANGELIST, query)

    assert response.status_code == 200
    assert sorted(key.name for key in response.context["cl"].result_list) == sorted(expected)


def test_change_page_shows_the_key_read_only(staff_client, keys):
    api_key, raw_key = keys[0]

    response = staff_client.get(reverse("admin:history_apikey_change", args=[api_key.pk]))

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    assert api_key.key_hash in response.content.decode()
    assert raw_key not in response.content.decode()


def test_revoke_action_revokes_reports_and_logs(staff_client, staff_user, keys):
    already_revoked = api_key_revoke(api_key=keys[2][0])
    selected = [keys[0][0], keys[1][0], already_revoked]

    response = staff_client.post(
        CHANGELIST,
        {"action": "revoke_keys", "_selected_action": [key.pk for key in selected]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Revoked 2 API keys." in [str(message) for message in response.context["messages"]]
    assert not ApiKey.objects.filter(revoked_at__isnull=True, user__username="owner").exists()
    assert ApiKey.objects.get(pk=already_revoked.pk).revoked_at == already_revoked.revoked_at
    entries = LogEntry.objects.filter(user=staff_user, action_flag=CHANGE)
    assert sorted(int(entry.object_id) for entry in entries) == sorted(
        [keys[0][0].pk, keys[1][0].pk]
    )
    assert {entry.change_message for entry in entries} == {"Revoked"}


def test_staff_who_may_only_view_keys_cannot_revoke(client, staff_user, keys):
    grant(staff_user, "view_apikey")
    client.force_login(staff_user)

    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "revoke_keys" not in response.content.decode()

    client.post(CHANGELIST, {"action": "revoke_keys", "_selected_action": [keys[0][0].pk]})
    assert ApiKey.objects.get(pk=keys[0][0].pk).is_active


def test_keys_cannot_be_added_in_the_admin(client, admin_user):
    client.force_login(admin_user)

    assert client.get(reverse("admin:history_apikey_add")).status_code == 403
    changelist = client.get(CHANGELIST).content.decode()
    assert reverse("admin:history_apikey_add") not in changelist


def test_other_users_cannot_see_the_changelist(client, owner, keys):
    client.force_login(owner)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/login/" in response["Location"]
