"""Unit tests of chatcore.config: defaults, flags, environment variables, errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chatcore.config import ConfigError, Settings, build_parser, from_sources

OPTIONS = Settings.options()
NAMES = [option.name for option in OPTIONS]

# Raw values for settings whose default's type alone cannot suggest valid ones.
SPECIAL_SAMPLES = {
    "log_level": ("debug", "error"),
    "log_format": ("json", "text"),
    "slow_mode": ("lobby=10", "news=60,lobby=5"),
    "trusted_proxy": ("127.0.0.1", "10.0.0.1,::1"),
    "port": ("9123", "9456"),
    "allow_origin": ("https://a.example", "http://b.example:8080,https://c.example"),
    "access": ("invite", "open"),
    "auth_header": ("X-Forwarded-User", "X-Auth-Request-User"),
    "public_url": ("https://chat.example.org", "http://10.0.0.5:8000"),
    "redis_url": ("redis://127.0.0.1:6379/0", "redis://redis.internal:6380/2"),
}
# Settings whose flag is shorter than the one their name gives.
SHORT_FLAGS = {"redis_url": "--redis"}


def sample(option: dataclasses.Field[Any], which: int = 0) -> str:
    """A valid raw value, not the default; ``which`` 0 and 1 give two different."""
    if option.name in SPECIAL_SAMPLES:
        return SPECIAL_SAMPLES[option.name][which]
    default = option.default
    if isinstance(default, int):
        return str(default + 7 + which)
    if isinstance(default, float):
        return str(default * 3 + 0.5 + which)
    return f"sample{which}-{option.name}"


def parsed(option: dataclasses.Field[Any], raw: str) -> Any:
    return option.metadata["parse"](raw)


def test_defaults() -> None:
    """Ensure the documented defaults."""
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 8000
    assert settings.max_text == 2000
    assert settings.rate == 5.0
    assert settings.burst == 10
    assert settings.history_max == 10000
    assert settings.outbox_max == 1 << 20
    assert settings.close_timeout == 2.0
    assert settings.db == "chat.db"
    assert settings.max_frame == 65536
    assert settings.handshake_timeout == 10.0
    assert settings.max_conn_per_ip == 100
    assert settings.allow_origin == ()
    assert settings.ping_interval == 25.0
    assert settings.typing_timeout == 8.0
    assert settings.log_level == "INFO"


def test_no_sources_gives_defaults() -> None:
    """Ensure no flags and no environment give the defaults."""
    assert from_sources([], {}) == Settings()


def test_settings_are_immutable() -> None:
    """Ensure settings cannot be changed once read."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


def test_unrelated_environment_is_ignored() -> None:
    """Ensure only CHAT_* variables are read."""
    environ = {"PORT": "1", "chat_port": "2", "CHAT_UNKNOWN": "3", "HOST": "x"}
    assert from_sources([], environ) == Settings()


@pytest.mark.parametrize("name", NAMES)
def test_flag_and_env_names(name: str) -> None:
    """Ensure each setting x_y has the flag --x-y and the variable CHAT_X_Y."""
    expected = SHORT_FLAGS.get(name, "--" + name.replace("_", "-"))
    assert Settings.flag_for(name) == expected
    assert Settings.env_for(name) == "CHAT_" + name.upper()


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_every_setting_listed_in_help(option: dataclasses.Field[Any]) -> None:
    """Ensure --help shows each setting's flag, variable and default."""
    text = " ".join(build_parser().format_help().split())  # undo line wrapping
    assert Settings.flag_for(option.name) in text
    assert Settings.env_for(option.name) in text
    shown = option.default if option.default not in ((), "") else "none"
    assert f"default {shown}" in text


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_every_setting_from_flag(option: dataclasses.Field[Any]) -> None:
    """Ensure each setting can be set with its flag."""
    raw = sample(option)
    settings = from_sources([Settings.flag_for(option.name), raw], {})
    assert getattr(settings, option.name) == parsed(option, raw)
    assert getattr(settings, option.name) != option.default


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_every_setting_from_env(option: dataclasses.Field[Any]) -> None:
    """Ensure each setting can be set with its environment variable."""
    raw = sample(option)
    settings = from_sources([], {Settings.env_for(option.name): raw})
    assert getattr(settings, option.name) == parsed(option, raw)


@pytest.mark.parametrize("option", OPTIONS, ids=NAMES)
def test_flag_beats_env_beats_default(option: dataclasses.Field[Any]) -> None:
    """Ensure the flag wins over the variable, which wins over the default."""
    flag, env = Settings.flag_for(option.name), Settings.env_for(option.name)
    from_env, from_flag = sample(option, 0), sample(option, 1)
    environ = {env: from_env}
    assert getattr(from_sources([], environ), option.name) == parsed(option, from_env)
    both = from_sources([flag, from_flag], environ)
    assert getattr(both, option.name) == parsed(option, from_flag)
    assert parsed(option, from_flag) != parsed(option, from_env)


def test_flag_equals_form() -> None:
    """Ensure --flag=value works as well as --flag value."""
    assert from_sources(["--port=9001", "--log-level=warning"], {}) == Settings(
        port=9001, log_level="WARNING"
    )


def test_sources_mix_per_setting() -> None:
    """Ensure each setting picks its own source independently."""
    settings = from_sources(
        ["--port", "9002"], {"CHAT_PORT": "1", "CHAT_BURST": "3", "CHAT_RATE": "0.5"}
    )
    assert (settings.port, settings.burst, settings.rate) == (9002, 3, 0.5)
    assert settings.max_text == Settings().max_text


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "error"])
def test_log_level_case_insensitive(level: str) -> None:
    """Ensure log levels are accepted in any case and stored upper-case."""
    assert from_sources(["--log-level", level], {}).log_level == level.upper()


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("port", "70000"),
        ("port", "-1"),
        ("port", "abc"),
        ("port", ""),
        ("rate", "0"),
        ("rate", "-2.5"),
        ("rate", "fast"),
        ("rate", "nan"),
        ("burst", "0"),
        ("burst", "-1"),
        ("burst", "1.5"),
        ("max_text", "-5"),
        ("history_max", "0"),
        ("outbox_max", "-100"),
        ("close_timeout", "0"),
        ("typing_timeout", "-1"),
        ("log_level", "loud"),
        ("log_level", ""),
    ],
)
@pytest.mark.parametrize("source", ["flag", "env"])
def test_bad_value_names_flag_env_and_value(name: str, raw: str, source: str) -> None:
    """Ensure a bad value raises ConfigError naming the flag, variable and value."""
    flag, env = Settings.flag_for(name), Settings.env_for(name)
    argv, environ = ([flag, raw], {}) if source == "flag" else ([], {env: raw})
    with pytest.raises(ConfigError) as info:
        from_sources(argv, environ)
    message = str(info.value)
    assert flag in message
    assert env in message
    assert repr(raw) in message


def test_redis_flag_and_variable() -> None:
    """Ensure --redis and CHAT_REDIS_URL set the Redis URL, empty by default."""
    assert Settings().redis_url == ""
    url = "redis://127.0.0.1:6379/1"
    assert from_sources(["--redis", url], {}).redis_url == url
    assert from_sources([], {"CHAT_REDIS_URL": url}).redis_url == url
    with pytest.raises(ConfigError, match="--redis / CHAT_REDIS_URL"):
        from_sources(["--redis", "localhost:6379"], {})


def test_bad_env_value_ignored_when_flag_given() -> None:
    """Ensure a bad variable does not matter when the flag overrides it."""
    assert from_sources(["--port", "9003"], {"CHAT_PORT": "abc"}).port == 9003


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """Ensure --help prints the usage and exits with status 0."""
    with pytest.raises(SystemExit) as info:
        from_sources(["--help"], {})
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "CHAT_PORT" in out


def test_unknown_flag_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """Ensure an unknown flag is refused by argparse with status 2."""
    with pytest.raises(SystemExit) as info:
        from_sources(["--no-such-flag"], {})
    assert info.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


NUMERIC = [
    option
    for option in OPTIONS
    if isinstance(option.default, int | float) and not isinstance(option.default, bool)
]


@pytest.mark.parametrize("option", NUMERIC, ids=lambda option: option.name)
@pytest.mark.parametrize("raw", ["abc", "", "12abc"])
def test_numeric_setting_says_it_must_be_a_number(
    option: dataclasses.Field[Any], raw: str
) -> None:
    """Ensure a word where a number belongs is refused as 'must be a number'."""
    with pytest.raises(ConfigError, match="must be a number"):
        from_sources([Settings.flag_for(option.name), raw], {})


@pytest.mark.parametrize(
    "option",
    [option for option in NUMERIC if isinstance(option.default, int)],
    ids=lambda option: option.name,
)
def test_integer_setting_refuses_a_fraction(option: dataclasses.Field[Any]) -> None:
    """Ensure 1.5 for a whole-number setting says so."""
    with pytest.raises(ConfigError, match="must be a whole number"):
        from_sources([Settings.flag_for(option.name), "1.5"], {})


def test_proxy_access_needs_the_proxy_address() -> None:
    """Ensure --access proxy without --trusted-proxy is refused, naming both."""
    with pytest.raises(ConfigError, match="--trusted-proxy"):
        from_sources(["--access", "proxy"], {})
    settings = from_sources(["--access", "proxy", "--trusted-proxy", "127.0.0.1"], {})
    assert settings.access == "proxy"


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("0", 0),
        ("4096", 4096),
        ("512K", 512 << 10),
        ("10MB", 10 << 20),
        ("1g", 1 << 30),
    ],
)
def test_sizes_take_binary_units(raw: str, size: int) -> None:
    """Ensure --max-upload and --upload-quota read 512K, 10MB and plain bytes."""
    assert from_sources(["--max-upload", raw], {}).max_upload == size
    assert from_sources([], {"CHAT_UPLOAD_QUOTA": raw}).upload_quota == size


def test_size_with_an_unknown_unit_is_refused() -> None:
    """Ensure a unit that is not K, M or G is refused, naming the flag."""
    with pytest.raises(ConfigError, match="--max-upload.*512K, 10MB"):
        from_sources(["--max-upload", "10 parsecs"], {})
