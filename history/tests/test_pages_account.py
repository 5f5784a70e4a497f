import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.template import loader
from django.test import Client, RequestFactory
from django.views import defaults

from history.models import ApiKey
from history.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
PASSWORD_URL = "/accounts/password/"
ACCOUNT_URL = "/account"
RAW_KEY = re.compile(r"gv_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def revoke_url(api_key: ApiKey) -> str:
    return f"/account/keys/{api_key.pk}/revoke"


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def other_key(other_user):
    return api_key_create(user=other_user, name="other laptop")[0]


# Sign in, sign out, password -------------------------------------------------------------


def test_login_page_has_labelled_fields_and_keeps_next(client):
    response = client.get(LOGIN_URL, {"next": ACCOUNT_URL})

    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert f'name="next" value="{ACCOUNT_URL}"' in html


def test_sign_in_with_the_right_password_goes_to_next(client, owner):
    response = client.post(
        LOGIN_URL, {"username": "owner", "password": PASSWORD, "next": ACCOUNT_URL}
    )

    assert response.status_code == 302
    assert response["Location"] == ACCOUNT_URL
    assert client.session[SESSION_KEY] == str(owner.pk)


def test_sign_in_with_a_wrong_password_shows_the_error(client, owner):
    response = client.post(
        LOGIN_URL, {"username": "owner", "password": "wrong", "next": ACCOUNT_URL}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert 'class="message message--error" id="login-errors" role="alert"' in html
    assert "enter a correct username and password" in html
    assert 'aria-describedby="login-errors"' in html
    assert 'value="owner"' in html
    assert f'name="next" value="{ACCOUNT_URL}"' in html


def test_sign_out_is_a_post_that_ends_the_session(owner_client):
    response = owner_client.post(LOGOUT_URL)

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert SESSION_KEY not in owner_client.session
    assert owner_client.get(ACCOUNT_URL).status_code == 302


def test_password_change_sets_the_new_password(owner_client, owner):
    form = owner_client.get(PASSWORD_URL)
    assert form.status_code == 200
    assert '<label for="id_old_password">' in form.content.decode()

    response = owner_client.post(
        PASSWORD_URL,
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer passphrase 42",
            "new_password2": "a much longer passphrase 42",
        },
        follow=True,
    )

    owner.refresh_from_db()
    assert response.redirect_chain[-1][0] == "/accounts/password/done/"
    assert "Password changed" in response.content.decode()
    assert owner.check_password("a much longer passphrase 42")
    assert owner_client.session[SESSION_KEY] == str(owner.pk)


def test_password_change_with_a_wrong_old_password_shows_the_error(owner_client, owner):
    response = owner_client.post(
        PASSWORD_URL,
        {
            "old_password": "wrong",
            "new_password1": "a much longer passphrase 42",
            "new_password2": "a much longer passphrase 42",
        },
    )

    html = response.content.decode()
    owner.refresh_from_db()
    assert response.status_code == 200
    assert owner.check_password(PASSWORD)
    assert 'id="id_old_password_error"' in html
    assert 'aria-describedby="id_old_password_error"' in html


# Account page ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [ACCOUNT_URL, "/account/keys/1/revoke", PASSWORD_URL])
def test_anonymous_users_are_sent_to_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next={url}"


def test_account_page_lists_only_the_users_keys(owner_client, owner, other_key):
    mine = api_key_create(user=owner, name="laptop")[0]
    revoked = api_key_revoke(api_key=api_key_create(user=owner, name="old server")[0])

    response = owner_client.get(ACCOUNT_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Signed in as <strong>owner</strong>" in html
    assert f"gv_{mine.prefix}_…" in html
    assert f"gv_{revoked.prefix}_…" in html
    assert "badge--active" in html
    assert "badge--revoked" in html
    assert "other laptop" not in html
    assert other_key.prefix not in html
    assert 'href="/accounts/password/"' in html
    assert 'href="/api/docs/"' in html
    assert "Authorization: Bearer" in html
    assert "http://testserver/api/generations/" in html


def test_account_page_queries_do_not_grow_with_keys(owner_client, owner, django_assert_num_queries):
    for n in range(5):
        api_key_create(user=owner, name=f"key {n}")

    # The session, the user and the keys.
    with django_assert_num_queries(3):
        owner_client.get(ACCOUNT_URL)


def test_account_page_without_keys_says_so(owner_client):
    response = owner_client.get(ACCOUNT_URL)

    assert "No API keys yet" in response.content.decode()


def test_creating_a_key_shows_it_once_and_it_works(owner_client, owner):
    response = owner_client.post(ACCOUNT_URL, {"name": "CI pipeline"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw_keys = set(RAW_KEY.findall(html))
    assert len(raw_keys) == 1
    raw_key = raw_keys.pop()
    assert "will not be shown again" in html
    assert 'for="new-key"' in html
    api_key = ApiKey.objects.get(user=owner)
    assert api_key.name == "CI pipeline"
    assert raw_key.startswith(f"gv_{api_key.prefix}_")

    again = owner_client.get(ACCOUNT_URL).content.decode()
    assert raw_key not in again
    assert not RAW_KEY.search(again)
    assert f"gv_{api_key.prefix}_…" in again

    assert api_key_authenticate(raw_key) == api_key


@pytest.mark.parametrize(
    ("name", "error"),
    [("", "Give the key a name."), ("   ", "Give the key a name."), ("laptop", "already")],
)
def test_a_blank_or_duplicate_name_shows_the_form_error(owner_client, owner, name, error):
    api_key_create(user=owner, name="laptop")

    response = owner_client.post(ACCOUNT_URL, {"name": name})

    html = response.content.decode()
    assert response.status_code == 200
    assert ApiKey.objects.filter(user=owner).count() == 1
    assert not RAW_KEY.search(html)
    assert 'class="field field--invalid"' in html
    assert re.search(r'<ul class="errorlist" id="id_name_error"><li>[^<]*' + error, html)
    assert re.search(r'<input [^>]*aria-describedby="id_name_helptext id_name_error"', html)
    assert 'aria-invalid="true"' in html


def test_revoking_a_key_revokes_it_and_says_so(owner_client, owner):
    api_key, raw_key = api_key_create(user=owner, name="laptop")

    response = owner_client.post(revoke_url(api_key), follow=True)

    api_key.refresh_from_db()
    assert response.redirect_chain == [(ACCOUNT_URL, 302)]
    assert not api_key.is_active
    assert api_key_authenticate(raw_key) is None
    assert "The key “laptop” is revoked" in response.content.decode()


def test_revoking_needs_a_post(owner_client, owner):
    api_key = api_key_create(user=owner, name="laptop")[0]

    response = owner_client.get(revoke_url(api_key))

    api_key.refresh_from_db()
    assert response.status_code == 405
    assert api_key.is_active


def test_revoking_another_users_key_answers_404_and_keeps_it(owner_client, other_key):
    response = owner_client.post(revoke_url(other_key))

    other_key.refresh_from_db()
    assert response.status_code == 404
    assert other_key.is_active


def test_revoking_a_missing_key_answers_404(owner_client):
    assert owner_client.post("/account/keys/999999/revoke").status_code == 404


# Error pages ----------------------------------------------------------------------------


def test_404_page_renders_with_the_site_layout(owner_client, settings):
    settings.DEBUG = False

    response = owner_client.get("/no-such-page")

    html = response.content.decode()
    assert response.status_code == 404
    assert "404.html" in [template.name for template in response.templates]
    assert 'class="site-header"' in html
    assert 'class="error-page"' in html
    assert "Page not found" in html
    assert 'href="/history"' in html


@pytest.mark.parametrize(
    ("template", "title"), [("400.html", "Bad request"), ("403.html", "Not allowed")]
)
def test_400_and_403_pages_render_with_the_site_layout(rf, owner, template, title):
    request = rf.get("/")
    request.user = owner

    html = loader.get_template(template).render({}, request)

    assert 'class="site-header"' in html
    assert title in html
    assert 'href="/history"' in html


def test_500_page_renders_without_a_request_context():
    response = defaults.server_error(RequestFactory().get("/"))

    html = response.content.decode()
    assert response.status_code == 500
    assert 'class="error-page"' in html
    assert "Something went wrong" in html
    assert 'href="/"' in html
