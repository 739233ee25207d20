"""USSD menu config: what subscriber input a validation may run on, and how a wrong count reads.

- A regular expression that can backtrack exponentially (nested quantifiers ``(a+)+``, overlapping
  alternatives under a quantifier ``(a|aa)+``) runs on subscriber input on the event loop: refused at
  load with file and line, in an input's ``validate.regex`` and in a service's ``where``.
- Input longer than a USSD string (182 characters, TS 23.038) is refused before any rule runs.
- ``max_invalid: -3`` says the range it must be in, not "must be a whole number" alone.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gateway.ussd import load_menus, parse_menus
from gateway.ussd.menus import InputScreen, Validation
from protocols.errors import ConfigError


def _input_menu(regex: str) -> str:
    return (
        'services:\n  - {code: "*1#", menu: ask}\n'
        "screens:\n"
        "  ask:\n"
        "    type: input\n"
        "    text: Enter\n"
        f"    validate: {{regex: '{regex}'}}  # <-\n"
        "    error: Wrong.\n"
        "    next: done\n"
        "  done: {type: final, text: ok}\n"
    )


def _marked_line(text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if "# <-" in line)


@pytest.mark.parametrize(
    ("regex", "reason"),
    [
        ("(a+)+$", "nested quantifiers"),
        ("([0-9]*)*", "nested quantifiers"),
        ("(\\d+\\s?)+", "nested quantifiers"),
        ("(?:[0-9]{1,3}[.]?)+", "nested quantifiers"),
        ("(a|aa)+", "alternatives that can match the same text"),
        ("(07|0)+[0-9]", "alternatives that can match the same text"),
    ],
)
def test_backtracking_regex_in_an_input_is_refused_at_its_line(
    tmp_path: Path, regex: str, reason: str
) -> None:
    text = _input_menu(regex)
    path = tmp_path / "menus.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_menus(path)
    error = info.value
    assert error.file == str(path) and error.line == _marked_line(text), str(error)
    assert "validate.regex" in error.reason and reason in error.reason, error.reason


def test_backtracking_regex_in_a_service_where_is_refused_at_its_line() -> None:
    text = (
        'services:\n  - code: "*123*{mb}#"\n'
        "    where: {mb: '([0-9]+)+'}  # <-\n"
        "    handler: buy_package\n"
        "screens:\n  m: {type: final, text: hi}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_menus(text, file="menus.yaml")
    assert info.value.line == _marked_line(text), str(info.value)
    assert "where.mb" in info.value.reason and "nested quantifiers" in info.value.reason


@pytest.mark.parametrize(
    "regex",
    [
        "07[0-9]{8}",
        "[0-9]+",
        "(\\+254|0)7[0-9]{8}",  # an alternation not under a quantifier
        "(a|b)+",  # one character each: a set, no choice to go back on
        "(ab|cd)+[0-9]",  # the alternatives start differently: one way to match
        "[1-9][0-9]{0,3}",
        "([0-9]{3})",  # a group repeated once
    ],
)
def test_ordinary_regexes_still_load(regex: str) -> None:
    menus = parse_menus(_input_menu(regex), file="menus.yaml")
    screen = menus.screens["ask"]
    assert isinstance(screen, InputScreen) and screen.validation.regex is not None
    assert screen.validation.regex.pattern == regex


def test_input_longer_than_a_ussd_string_is_refused_before_the_rules() -> None:
    """The rules never run on more than a USSD string holds, so a pattern's cost has a bound."""
    plain = Validation(regex=re.compile("[0-9]+"))
    assert plain.check("1" * 182) is True
    assert plain.check("1" * 183) is False
    assert Validation().check("x" * 183) is False  # no rule at all: still not a USSD string
    slow = Validation(regex=re.compile("[0-9]*[0-9]*[0-9]*[0-9]*x"))  # O(n^4) when it fails
    started = time.perf_counter()
    assert slow.check("1" * 5_000) is False
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-3", "settings.max_invalid must be a whole number from 0 to 100, got -3"),
        ("1.5", "settings.max_invalid must be a whole number from 0 to 100, got 1.5"),
        ("many", "settings.max_invalid must be a whole number from 0 to 100, got 'many'"),
        ("101", "settings.max_invalid must be 0..100, got 101"),
    ],
)
def test_max_invalid_says_its_range(value: str, reason: str) -> None:
    text = (
        f"settings:\n  max_invalid: {value}  # <-\n"
        'services:\n  - {code: "*1#", menu: m}\n'
        "screens:\n  m: {type: final, text: hi}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_menus(text, file="menus.yaml")
    assert info.value.line == 2, str(info.value)
    assert info.value.reason == reason
