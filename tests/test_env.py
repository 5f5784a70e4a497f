import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str


def test_defaults_apply_when_unset(monkeypatch):
    monkeypatch.delenv("GV_X", raising=False)
    assert env_str("GV_X", "d") == "d"
    assert env_bool("GV_X", True) is True
    assert env_int("GV_X", 5) == 5
    assert env_list("GV_X", ["a"]) == ["a"]


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("0", False), ("off", False)]
)
def test_booleans(monkeypatch, raw, expected):
    monkeypatch.setenv("GV_X", raw)
    assert env_bool("GV_X", not expected) is expected


def test_bad_values_fail_loudly(monkeypatch):
    monkeypatch.setenv("GV_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="GV_X must be a boolean"):
        env_bool("GV_X", False)
    with pytest.raises(ImproperlyConfigured, match="GV_X must be an integer"):
        env_int("GV_X", 1)
    monkeypatch.setenv("GV_X", "-3")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("GV_X", 1, minimum=0)


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("GV_X", "a.example, b.example,,")
    assert env_list("GV_X", []) == ["a.example", "b.example"]
