"""The open-file limit at start: raised, logged, and warned about when short."""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator

import pytest

from chatcore.config import Settings
from chatcore.server import (
    RESERVED_FILES,
    connection_cap,
    raise_open_file_limit,
    report_file_limit,
)


@pytest.fixture
def soft_limit_of_500() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (500, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_the_hard_one(soft_limit_of_500: int) -> None:
    """Ensure the start raises the soft limit as far as it may go."""
    assert raise_open_file_limit() == soft_limit_of_500
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft_limit_of_500


def test_a_short_limit_caps_the_connections_and_is_warned_about(
    soft_limit_of_500: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Ensure a limit below --max-connections caps the connections at what
    it leaves room for, and the log says so, naming how to raise it."""
    settings = Settings(max_connections=1000)
    assert connection_cap(settings) == 500 - RESERVED_FILES
    with caplog.at_level(logging.INFO, logger="chatcore.server"):
        report_file_limit(settings, 500)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"at most {500 - RESERVED_FILES} connections" in record.getMessage()
    assert "LimitNOFILE" in record.getMessage()


def test_a_limit_with_room_is_only_logged(
    soft_limit_of_500: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Ensure no warning when the limit holds --max-connections."""
    settings = Settings(max_connections=100)
    assert connection_cap(settings) == 100
    with caplog.at_level(logging.INFO, logger="chatcore.server"):
        report_file_limit(settings, 500)
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "up to 100 connections" in record.getMessage()
