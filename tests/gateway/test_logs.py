"""Structured logs (gateway/logs.py): one JSON object per line with the subscriber, campaign and offer
ids a record carries, exceptions as one field; the text format for terminals."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway.logs import JsonFormatter, configure_logging, log_ids


@pytest.fixture(autouse=True)
def root_logger() -> Iterator[logging.Logger]:
    """The root logger's handlers and level as they were before the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line_with_the_ids() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    log = logging.getLogger("gateway.test")
    log.info(
        "offer %s sent",
        "abc",
        extra={"msisdn": "254700000001", "campaign_id": "upsell_new", "offer_id": "abc"},
    )
    log.warning("reload refused: %s", "bad file", extra=log_ids(campaign_id="upsell_new"))
    log.info('no ids here, but ünïcödé and "quotes"\nand a newline')
    log.debug("below the level")
    first, second, third = _lines(stream)
    assert first == {
        "time": first["time"],
        "level": "INFO",
        "logger": "gateway.test",
        "message": "offer abc sent",
        "msisdn": "254700000001",
        "campaign_id": "upsell_new",
        "offer_id": "abc",
    }
    stamp = str(first["time"])
    assert stamp.endswith("Z") and len(stamp) == len("2026-06-01T14:00:00.123Z")
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert second["level"] == "WARNING" and second["campaign_id"] == "upsell_new"
    assert "msisdn" not in second and "offer_id" not in second
    assert third["message"] == 'no ids here, but ünïcödé and "quotes"\nand a newline'
    assert set(third) == {"time", "level", "logger", "message"}


def test_an_exception_is_one_field() -> None:
    stream = io.StringIO()
    configure_logging("json", logging.DEBUG, stream=stream)
    log = logging.getLogger("gateway.test")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("billing call failed", extra=log_ids(msisdn="254700000002", offer_id="o1"))
    (line,) = stream.getvalue().splitlines()  # the traceback's newlines are escaped: one line
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["message"] == "billing call failed"
    assert record["msisdn"] == "254700000002" and record["offer_id"] == "o1"
    exception = str(record["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("ValueError: boom\nsecond line")
    assert "test_an_exception_is_one_field" in exception


def test_stack_info_and_odd_extra_values() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "gateway.x", logging.INFO, __file__, 1, "hi", None, None, sinfo="Stack (most recent)"
    )
    record.msisdn = 254700000003  # not a string: written as it is
    record.offer_id = object()  # not JSON: written as its str()
    data = json.loads(formatter.format(record))
    assert data["stack"] == "Stack (most recent)"
    assert data["msisdn"] == 254700000003
    assert str(data["offer_id"]).startswith("<object object")


def test_the_text_format() -> None:
    stream = io.StringIO()
    configure_logging("text", "info", stream=stream)
    log = logging.getLogger("gateway.test")
    log.info("offer sent", extra=log_ids(msisdn="254700000001", campaign_id="upsell_new"))
    try:
        raise KeyError("x")
    except KeyError:
        log.error("failed", exc_info=True)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(" INFO gateway.test: offer sent  msisdn=254700000001 campaign_id=upsell_new")
    assert lines[1].endswith(" ERROR gateway.test: failed")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'x'"


def test_configuring_again_replaces_only_its_own_handler(root_logger: logging.Logger) -> None:
    foreign = logging.StreamHandler(io.StringIO())
    root_logger.addHandler(foreign)
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "INFO", stream=first)
    handler = configure_logging("json", "WARNING", stream=second)
    assert foreign in root_logger.handlers and handler in root_logger.handlers
    assert sum(1 for h in root_logger.handlers if isinstance(h.formatter, JsonFormatter)) == 1
    assert root_logger.level == logging.WARNING
    logging.getLogger("gateway.test").warning("once")
    assert first.getvalue() == ""
    assert [line["message"] for line in _lines(second)] == ["once"]


def test_a_wrong_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "INFO")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "LOUD")
