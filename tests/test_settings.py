"""Settings (router/settings.py): ``LEADROUTER_*`` variables parsed into typed values, flags
over the environment, durations, and errors that name the variable and say how to fix it."""

from __future__ import annotations

import pytest

from router.settings import ENV_PREFIX, Settings, SettingsError


def test_no_variables_give_the_defaults() -> None:
    got = Settings.from_env({})
    assert got == Settings()
    assert (got.host, got.port, got.workers, got.redis_url, got.admin_token) == \
        ("127.0.0.1", 8080, 1, None, None)
    assert got.decision_retention == 30 * 86400 and got.require_rules_tests is True
    assert ENV_PREFIX == "LEADROUTER_"


def test_variables_are_parsed_into_their_types() -> None:
    got = Settings.from_env({
        "LEADROUTER_HOST": "0.0.0.0", "LEADROUTER_PORT": "9000", "LEADROUTER_WORKERS": "4",
        "LEADROUTER_REDIS_URL": "redis://cache:6379/2", "LEADROUTER_ADMIN_TOKEN": "s3cret",
        "LEADROUTER_RELOAD_POLL_SECONDS": "0.5", "LEADROUTER_REQUIRE_RULES_TESTS": "false",
        "LEADROUTER_REQUIRE_API_KEY": "true", "LEADROUTER_ENGINE": "durable",
        "LEADROUTER_PLUGIN_BUDGET": "1.5", "LEADROUTER_MAX_FIELDS": "50",
    })
    assert (got.host, got.port, got.workers) == ("0.0.0.0", 9000, 4)
    assert (got.redis_url, got.admin_token) == ("redis://cache:6379/2", "s3cret")
    assert got.reload_poll_seconds == 0.5 and got.plugin_budget == 1.5
    assert got.require_rules_tests is False and got.require_api_key is True
    assert (got.engine, got.max_fields) == ("durable", 50)


def test_empty_and_foreign_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({"LEADROUTER_PORT": "", "LEADROUTER_NOT_A_SETTING": "x",
                              "PORT": "1", "leadrouter_port": "2"}) == Settings()
    # without a mapping: the process environment
    monkeypatch.setenv("LEADROUTER_KEY_PREFIX", "staging:")
    monkeypatch.setenv("LEADROUTER_WORKERS", "3")
    got = Settings.from_env()
    assert (got.key_prefix, got.workers) == ("staging:", 3)


def test_flags_beat_the_environment_and_none_means_unset() -> None:
    env = {"LEADROUTER_PORT": "9000", "LEADROUTER_HOST": "0.0.0.0"}
    got = Settings.from_env(env, port=7000, host=None, rules_dir="/etc/rules")
    assert (got.port, got.host, got.rules_dir) == (7000, "0.0.0.0", "/etc/rules")


@pytest.mark.parametrize(("value", "seconds"), [
    ("3600", 3600), ("30d", 30 * 86400), ("24h", 86400), ("90m", 5400), ("1h30m", 5400),
    ("45s", 45)])
@pytest.mark.parametrize("name", ["decision_retention", "idempotency_retention",
                                  "engagement_retention", "inflight_timeout"])
def test_retentions_take_seconds_or_durations(name: str, value: str, seconds: int) -> None:
    got = Settings.from_env({f"LEADROUTER_{name.upper()}": value})
    assert getattr(got, name) == seconds


@pytest.mark.parametrize(("env", "variable"), [
    ({"LEADROUTER_PORT": "99999"}, "LEADROUTER_PORT"),
    ({"LEADROUTER_PORT": "http"}, "LEADROUTER_PORT"),
    ({"LEADROUTER_WORKERS": "0"}, "LEADROUTER_WORKERS"),
    ({"LEADROUTER_WORKERS": "65"}, "LEADROUTER_WORKERS"),
    ({"LEADROUTER_ENGINE": "turbo"}, "LEADROUTER_ENGINE"),
    ({"LEADROUTER_REQUIRE_API_KEY": "maybe"}, "LEADROUTER_REQUIRE_API_KEY"),
    ({"LEADROUTER_RELOAD_POLL_SECONDS": "-1"}, "LEADROUTER_RELOAD_POLL_SECONDS"),
    ({"LEADROUTER_MAX_BODY_BYTES": "10"}, "LEADROUTER_MAX_BODY_BYTES"),
    ({"LEADROUTER_DECISION_RETENTION": "0"}, "LEADROUTER_DECISION_RETENTION"),
    ({"LEADROUTER_SLA_LEASE_SECONDS": "0"}, "LEADROUTER_SLA_LEASE_SECONDS"),
])
def test_a_bad_value_names_its_variable_and_the_fix(env: dict[str, str],
                                                     variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert message.startswith(f"{variable}: "), message
    assert "fix the value (see docs/operations.md)" in message


@pytest.mark.parametrize("name", ["decision_retention", "idempotency_retention",
                                  "engagement_retention", "inflight_timeout"])
def test_a_bad_duration_shows_what_to_write(name: str) -> None:
    variable = f"LEADROUTER_{name.upper()}"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: "a while"})
    assert str(info.value) == (f"{variable}='a while' is not a duration — use seconds or "
                               "e.g. 30d, 24h, 90m")


def test_a_bad_flag_is_an_error_too() -> None:
    with pytest.raises(SettingsError, match="LEADROUTER_PORT"):
        Settings.from_env({}, port=-1)
    assert issubclass(SettingsError, ValueError)


def test_to_env_hands_workers_exactly_what_was_resolved() -> None:
    resolved = Settings(host="0.0.0.0", port=9001, workers=4, admin_token="t",
                        redis_url="redis://r:6379/1", require_api_key=True,
                        access_log=False, reload_poll_seconds=0.25, decision_retention=7200)
    env = resolved.to_env()
    assert env["LEADROUTER_REQUIRE_API_KEY"] == "true" and env["LEADROUTER_ACCESS_LOG"] == "false"
    assert env["LEADROUTER_PORT"] == "9001" and env["LEADROUTER_DECISION_RETENTION"] == "7200"
    assert "LEADROUTER_PUBLIC_URL" not in env  # None: not set at all
    assert set(env) <= {f"LEADROUTER_{n.upper()}" for n in Settings.__struct_fields__}
    assert Settings.from_env(env) == resolved
    assert Settings.from_env(Settings().to_env()) == Settings()


def test_settings_take_durations_and_refuse_nonsense() -> None:
    default = Settings.from_env({})
    assert default.engagement_retention == 400 * 86400 and default.outbox_maxlen == 100_000
    got = Settings.from_env({"LEADROUTER_ENGAGEMENT_RETENTION": "30d",
                             "LEADROUTER_OUTBOX_MAXLEN": "20000"})
    assert (got.engagement_retention, got.outbox_maxlen) == (30 * 86400, 20_000)
    assert Settings.from_env({"LEADROUTER_ENGAGEMENT_RETENTION": "90"}).engagement_retention == 90
    with pytest.raises(SettingsError, match="LEADROUTER_ENGAGEMENT_RETENTION='soon'"):
        Settings.from_env({"LEADROUTER_ENGAGEMENT_RETENTION": "soon"})
    with pytest.raises(SettingsError, match="LEADROUTER_OUTBOX_MAXLEN"):
        Settings.from_env({"LEADROUTER_OUTBOX_MAXLEN": "10"})
    assert Settings(engagement_retention=3600).to_env()["LEADROUTER_ENGAGEMENT_RETENTION"] == \
        "3600"  # what `serve` hands its workers


def test_redis_cluster_turns_the_url_into_a_cluster_seed_list() -> None:
    on = {f"{ENV_PREFIX}REDIS_CLUSTER": "true"}
    got = Settings.from_env({**on, f"{ENV_PREFIX}REDIS_URL": "rediss://u:p@n1:7000,n2:7001"})
    assert got.redis_url == "rediss+cluster://u:p@n1:7000,n2:7001"
    assert Settings.from_env(got.to_env()).redis_url == got.redis_url  # workers: unchanged
    assert Settings.from_env({**on, f"{ENV_PREFIX}REDIS_URL": "redis+sentinel://s/m"}
                             ).redis_url == "redis+sentinel://s/m"  # other modes as they are
    assert Settings.from_env({f"{ENV_PREFIX}REDIS_URL": "redis://n1"}).redis_url == "redis://n1"
