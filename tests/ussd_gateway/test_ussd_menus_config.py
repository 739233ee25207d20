"""The menu config: the shipped file loads, and every mistake is a ConfigError naming the file, the
line and the reason (issue 5: "a menu that would exceed 182 characters, a code without a handler, or
a broken reference between screens is a config error at load time with file, line and the reason").

Each broken document marks the line the error must name with ``# <-``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ussd_gateway_harness import SHIPPED_MENUS, client_config

from gateway.smpp.client import SmppClient
from gateway.ussd import UssdService, load_menus, parse_menus
from gateway.ussd.menus import (
    InputScreen,
    MenuScreen,
    Settings,
    Validation,
    paginate,
    placeholders,
    render,
    truncate,
)
from protocols.errors import ConfigError
from protocols.ussd import PROFILES, make_profile, parse_service_code

STANDARD = PROFILES["standard"]
SHIPPED_HANDLERS = {"buy_package", "gift_data", "balance"}
SHIPPED_PROVIDERS = {"my_offers"}
X200 = "x" * 200


def config_error(function: Callable[..., object], *args: object, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        function(*args, **kwargs)
    return info.value


def expect_error(text: str, reason: str, **kwargs: object) -> ConfigError:
    marked = [n for n, line in enumerate(text.splitlines(), 1) if "# <-" in line]
    with pytest.raises(ConfigError) as info:
        parse_menus(text, file="menus.yaml", **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert reason in error.reason, error.reason
    assert error.file == "menus.yaml"
    assert error.line == (marked[0] if marked else None), str(error)
    assert str(error).startswith(f"menus.yaml:{error.line}: " if error.line else "menus.yaml: ")
    return error


# --- the shipped file --------------------------------------------------------------------------------


def test_shipped_menus_load() -> None:
    menus = load_menus(SHIPPED_MENUS, handlers=SHIPPED_HANDLERS, providers=SHIPPED_PROVIDERS)
    assert menus.file == str(SHIPPED_MENUS)
    assert [r.code for r in menus.routes] == ["*123#", "*123*{mb}#"]
    assert isinstance(menus.screens["main"], MenuScreen)
    assert isinstance(menus.screens["friend_amount"], InputScreen)
    assert {s.kind for s in menus.screens.values()} == {"menu", "input", "final", "dynamic", "action"}
    # every screen is within the limit; the monthly menu needs two pages
    monthly = menus.screens["monthly"]
    assert isinstance(monthly, MenuScreen)
    pages = paginate(
        monthly.text,
        [(o.key, o.label) for o in monthly.options],
        STANDARD,
        menus.settings,
        back_on_first=True,
    )
    assert len(pages) == 2 and all(len(p.text) <= 182 for p in pages)
    # also under the shorter screens some networks impose, paged further
    short = make_profile("standard", "short", max_gsm7_chars=120)
    load_menus(SHIPPED_MENUS, profile=short)


def test_shipped_menus_with_missing_handlers() -> None:
    error = config_error(load_menus, SHIPPED_MENUS, handlers={"buy_package"})
    assert error.file == str(SHIPPED_MENUS)
    assert "no handler named 'gift_data'" in error.reason
    lines = SHIPPED_MENUS.read_text().splitlines()
    assert lines[error.line - 1].strip() == "gift:"  # type: ignore[operator]
    error = config_error(load_menus, SHIPPED_MENUS, providers=set())
    assert "no provider named 'my_offers' is registered (registered: none)" in error.reason
    assert lines[error.line - 1].strip() == "my_offers:"  # type: ignore[operator]


def test_service_checks_its_handlers_at_construction() -> None:
    client = SmppClient(client_config(1))
    menus = load_menus(SHIPPED_MENUS)
    with pytest.raises(ConfigError, match="no handler named 'buy_package'") as info:
        UssdService(client, STANDARD, menus, {}, {})
    line = SHIPPED_MENUS.read_text().splitlines()[info.value.line - 1]  # type: ignore[operator]
    assert line.strip() == '- code: "*123*{mb}#"'
    with pytest.raises(Exception, match="handler_timeout"):
        UssdService(client, STANDARD, menus, handler_timeout=0)


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    error = config_error(load_menus, missing)
    assert error.file == str(missing) and error.line is None and "cannot read" in error.reason
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "cannot read" in config_error(load_menus, binary).reason


# --- errors ---------------------------------------------------------------------------------------

SERVICES = 'services:\n  - {code: "*1#", menu: m}\n'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: final\n    text: {X200}\n",
            "screen 'm' text is over the screen limit: USSD screen is 200 GSM 7-bit characters, the limit is 182",
            id="final-over-182",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: menu\n    text: {'h' * 175}\n"
            "    options:\n      - {label: Go, next: m}\n",
            "screen 'm' cannot fit in one USSD screen even paged",
            id="menu-header-over-limit",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: final\n    text: {'д' * 81}\n",
            "81 UCS-2 characters, the limit is 80",
            id="ucs2-over-80",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: input\n    text: {X200}\n    next: m\n",
            "screen 'm' text is over the screen limit",
            id="input-over-limit",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: input\n    text: Enter\n    error: {'e' * 180}\n"
            "    next: m\n",
            "screen 'm' error is over the screen limit",
            id="input-error-over-limit",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: input\n    text: Enter\n    fail_text: {X200}\n"
            "    next: m\n",
            "screen 'm' fail_text is over",
            id="input-fail-text-over-limit",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: dynamic\n    text: {'d' * 175}\n    provider: p\n"
            "    item: '{name}'\n    next: m\n",
            "text with its navigation lines is over",
            id="dynamic-header-over-limit",
        ),
        pytest.param(
            SERVICES + f"screens:\n  m:  # <-\n    type: dynamic\n    text: Offers\n    provider: p\n"
            f"    item: '{{name}}'\n    next: m\n    empty_text: {X200}\n",
            "empty_text is over",
            id="dynamic-empty-text-over-limit",
        ),
        pytest.param(
            f"settings:\n  texts: {{failure: {X200}}}  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "settings text 'failure' is over",
            id="settings-text-over-limit",
        ),
        pytest.param(
            'services:\n  - {code: "*1#"}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "service code *1# has no handler: give menu, handler or http",
            id="code-without-handler",
        ),
        pytest.param(
            'services:\n  - {code: "*1#", menu: m, handler: h}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "has more than one handler: menu, handler",
            id="code-with-two-handlers",
        ),
        pytest.param(
            'services:\n  - {code: "*1#", menu: nowhere}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "service *1# menu: no screen 'nowhere' (screens: m)",
            id="unknown-entry-screen",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - {label: One, next: m}\n      - label: Two\n        next: missing  # <-\n",
            "screen 'm' option 2 next: no screen 'missing'",
            id="broken-option-reference",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: gone  # <-\n",
            "screen 'm' next: no screen 'gone'",
            id="broken-input-reference",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - {key: 1, label: One, next: m}\n      - {key: 1, label: Two, next: m}  # <-\n",
            "screen 'm': option 1 is numbered twice (first at line 8)",
            id="option-numbered-twice",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - {key: 99, label: One, next: m}  # <-\n",
            "option 99 collides with a navigation input",
            id="option-on-navigation-input",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - {key: 1a, label: One, next: m}  # <-\n",
            "option key '1a' must be keypad input",
            id="option-key-not-keypad",
        ),
        pytest.param(
            SERVICES
            + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n      - {key: 1, next: m}  # <-\n",
            "option 1 has no label",
            id="option-without-label",
        ),
        pytest.param(
            SERVICES
            + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n      - {label: One}  # <-\n",
            "option 1 leads nowhere: give next",
            id="option-without-next",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options: []  # <-\n",
            "options must be a non-empty list",
            id="menu-without-options",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: 'Hello {nme}'}  # <-\n",
            "placeholder {nme} is never set",
            id="unknown-placeholder",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {regex: '[0-9'}  # <-\n",
            "is not a valid regular expression",
            id="bad-regex",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {min: 10, max: 5}  # <-\n",
            "max 5 is below min 10",
            id="min-above-max",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {min_length: 4, max_length: 2}  # <-\n",
            "max_length is below min_length",
            id="lengths",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {choices: []}  # <-\n",
            "choices must be a non-empty list",
            id="empty-choices",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {min: ten}  # <-\n",
            "must be a number, got 'ten'",
            id="min-not-a-number",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n"
            "    validate: {max: .inf}  # <-\n",
            "must be a finite number",
            id="infinite-max",
        ),
        pytest.param(
            SERVICES
            + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n    max_retries: 50  # <-\n",
            "max_retries must be 0..20, got 50",
            id="max-retries-range",
        ),
        pytest.param(
            SERVICES
            + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n    navigation: maybe  # <-\n",
            "navigation must be true or false",
            id="navigation-not-bool",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n    save_as: 2x  # <-\n",
            "save_as '2x' must be a name",
            id="save-as-not-a-name",
        ),
        pytest.param(
            'services:\n  - {code: "*1#", menu: m}\n  - {code: "*1#", menu: m}  # <-\n'
            "screens:\n  m: {type: final, text: hi}\n",
            "service code *1# is given twice (first at line 2)",
            id="duplicate-code",
        ),
        pytest.param(
            'services:\n  - code: "123"  # <-\n    menu: m\nscreens:\n  m: {type: final, text: hi}\n',
            "code '123' is not a USSD service code",
            id="bad-code",
        ),
        pytest.param(
            'services:\n  - code: "*1*{a}*{a}#"  # <-\n    handler: h\nscreens:\n  m: {type: final, text: hi}\n',
            "parameter {a} appears twice",
            id="repeated-parameter",
        ),
        pytest.param(
            'services:\n  - code: "*1*{a}#"\n    handler: h\n    where: {b: "1"}  # <-\n'
            "screens:\n  m: {type: final, text: hi}\n",
            "where: 'b' is not a parameter of *1*{a}#",
            id="where-unknown-parameter",
        ),
        pytest.param(
            'services:\n  - code: "*1*{a}#"\n    handler: h\n    where: {a: "(("}  # <-\n'
            "screens:\n  m: {type: final, text: hi}\n",
            "where.a '((' is not a valid regular expression",
            id="where-bad-regex",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    menu: m\n    args: {a: b}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "args go with a handler, not a menu",
            id="args-with-menu",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    handler: "no way"  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "handler 'no way' must be a name",
            id="handler-not-a-name",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    http: {timeout: 3}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "http needs a url",
            id="http-without-url",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    http: {url: "ftp://x/"}  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "must be an http:// or https:// URL",
            id="http-bad-url",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    http: {url: "http://x/", timeout: 0}  # <-\n'
            "screens:\n  m: {type: final, text: hi}\n",
            "http.timeout must be more than 0 and at most 60 s",
            id="http-timeout",
        ),
        pytest.param(
            'services:\n  - code: "*1#"\n    menu: m\n    shortcuts: 1  # <-\nscreens:\n  m: {type: final, text: hi}\n',
            "shortcuts must be true or false",
            id="shortcuts-not-bool",
        ),
        pytest.param(
            "services:\n  - {menu: m}  # <-\nscreens:\n  m: {type: final, text: hi}\n",
            "service without a code",
            id="service-without-code",
        ),
        pytest.param(
            "services: []  # <-\nscreens:\n  m: {type: final, text: hi}\n",
            "services must be a non-empty list",
            id="no-services",
        ),
        pytest.param(SERVICES + "screens: {}  # <-\n", "screens must not be empty", id="no-screens"),
        pytest.param("version: 1  # <-\n" + SERVICES, "the menu file has no 'screens'", id="screens-missing"),
        pytest.param(
            "screens:  # <-\n  m: {type: final, text: hi}\n",
            "the menu file has no 'services'",
            id="services-missing",
        ),
        pytest.param(
            "version: 2  # <-\n" + SERVICES + "screens:\n  m: {type: final, text: hi}\n",
            "version must be 1..1, got 2",
            id="version",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}\nmenus: {}  # <-\n",
            "unknown field 'menus'",
            id="unknown-top-field",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: final\n    text: hi\n    options: []  # <-\n",
            "screen 'm': unknown field 'options'",
            id="unknown-screen-field",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:  # <-\n    text: hi\n",
            "screen 'm' has no type",
            id="screen-without-type",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: popup  # <-\n    text: hi\n",
            "type must be menu, input, final, dynamic or action",
            id="bad-type",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:  # <-\n    type: final\n",
            "a final screen needs text",
            id="final-without-text",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: hello  # <-\n",
            "screen 'm' must be a mapping",
            id="screen-not-a-mapping",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}\n  2m: {type: final, text: hi}  # <-\n",
            "screen id '2m' must be a name",
            id="bad-screen-id",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}\n  m: {type: final, text: ho}  # <-\n",
            "screens: 'm' appears twice",
            id="screen-twice",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: ''}  # <-\n",
            "screen 'm' text must not be empty",
            id="empty-text",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: [a]}  # <-\n",
            "screen 'm' text must be a value",
            id="text-not-a-value",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}\n  ? [a]  # <-\n  : {type: final, text: hi}\n",
            "keys must be plain words",
            id="key-not-a-word",
        ),
        pytest.param(
            "settings:\n  navigation: {back: '0', home: '0', more: '99'}  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "back, home and more must be different inputs",
            id="navigation-inputs-equal",
        ),
        pytest.param(
            "settings:\n  navigation: {back: 'b'}  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "settings.navigation.back must be keypad input",
            id="navigation-not-keypad",
        ),
        pytest.param(
            "settings:\n  navigation: {show_back: 3}  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "show_back must be true or false",
            id="show-back-not-bool",
        ),
        pytest.param(
            "settings:\n  option_format: '{key}'  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "must contain {key} and {label}",
            id="option-format",
        ),
        pytest.param(
            "settings:\n  max_invalid: -1  # <-\n" + SERVICES + "screens:\n  m: {type: final, text: hi}\n",
            "settings.max_invalid must be a whole number",
            id="max-invalid",
        ),
        pytest.param(
            "settings:\n  texts: {goodbye: x}  # <-\n"
            + SERVICES
            + "screens:\n  m: {type: final, text: hi}\n",
            "unknown field 'goodbye'",
            id="unknown-text",
        ),
        pytest.param(
            "settings: [1]  # <-\n" + SERVICES + "screens:\n  m: {type: final, text: hi}\n",
            "settings must be a mapping",
            id="settings-not-a-mapping",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - label: One\n        next: m\n        set: {2x: y}  # <-\n",
            "'2x' must be a name",
            id="set-bad-name",
        ),
        pytest.param(
            SERVICES + "screens:\n  m:\n    type: menu\n    text: Hi\n    options:\n"
            "      - label: One\n        next: m\n        set: {a: [1]}  # <-\n",
            "set.a must be a value",
            id="set-not-a-value",
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}}  # <-\n", "not valid YAML", id="yaml"
        ),
        pytest.param(
            SERVICES + "screens:\n  m: {type: final, text: hi}\n  n: *nope  # <-\n",
            "found undefined alias",
            id="yaml-alias",
        ),
        pytest.param(
            SERVICES + 'screens:\n  m: {type: final, text: "\x07"}  # <-\n', "not valid YAML", id="control"
        ),
        pytest.param("", "the menu file is empty", id="empty"),
    ],
)
def test_errors_name_file_line_and_reason(text: str, reason: str) -> None:
    expect_error(text, reason)


def test_unknown_handlers_and_providers_name_their_line() -> None:
    text = (
        'services:\n  - {code: "*1#", menu: m}\n  - {code: "*2#", handler: pay}\n'
        "screens:\n  m:\n    type: dynamic\n    text: Offers\n    provider: offers\n"
        "    item: '{name}'\n    next: buy\n  buy: {type: action, handler: buy}\n"
    )
    error = config_error(parse_menus, text, file="m.yaml", handlers={"buy"})
    assert (error.line, error.reason) == (3, "no handler named 'pay' is registered (registered: buy)")
    error = config_error(parse_menus, text, file="m.yaml", handlers={"pay"})
    assert (error.line, error.reason) == (11, "no handler named 'buy' is registered (registered: pay)")
    error = config_error(parse_menus, text, handlers={"pay", "buy"}, providers={"x"})
    assert error.line == 5 and "no provider named 'offers'" in error.reason
    parse_menus(text, handlers={"pay", "buy"}, providers={"offers"})


def test_screen_limit_follows_the_profile() -> None:
    text = SERVICES + f"screens:\n  m: {{type: final, text: {'y' * 100}}}\n"
    parse_menus(text)
    short = make_profile("standard", "short", max_gsm7_chars=90)
    error = config_error(parse_menus, text, profile=short)
    assert "the limit is 90 (profile 'short')" in error.reason and error.line == 4


# --- routing -------------------------------------------------------------------------------------------

ROUTES = """\
services:
  - {code: "*123#", menu: m}
  - {code: "*123*7#", handler: seven}
  - code: "*123*{mb}#"
    where: {mb: "100|200"}
    handler: buy
  - {code: "*123*{mb}*{days}#", handler: buy_for}
  - {code: "*200#", menu: m, shortcuts: false}
  - {code: "#300*{x}#", handler: hash}
screens:
  m: {type: final, text: "hi {days} {x}"}
"""


@pytest.mark.parametrize(
    ("dialled", "route", "named", "shortcuts"),
    [
        ("*123#", "*123#", {}, ()),
        ("*123*7#", "*123*7#", {}, ()),
        ("*123*200#", "*123*{mb}#", {"mb": "200"}, ()),
        ("*123*300*7#", "*123*{mb}*{days}#", {"mb": "300", "days": "7"}, ()),
        ("*123*300#", "*123#", {}, ("300",)),
        ("*123*1*2#", "*123*{mb}*{days}#", {"mb": "1", "days": "2"}, ()),
        ("*123*1*2*3#", "*123#", {}, ("1", "2", "3")),
        ("#300*5#", "#300*{x}#", {"x": "5"}, ()),
        ("*200*1#", None, None, None),
        ("*300*5#", None, None, None),
        ("*999#", None, None, None),
        ("#123#", None, None, None),
    ],
)
def test_route_for(dialled: str, route: str | None, named: dict[str, str] | None, shortcuts: object) -> None:
    menus = parse_menus(ROUTES)
    match = menus.route_for(parse_service_code(dialled))
    if route is None:
        assert match is None
        return
    assert match is not None
    assert (match.route.code, dict(match.named), match.shortcut_inputs) == (route, named, shortcuts)


def test_same_pattern_with_different_where_is_allowed() -> None:
    text = (
        'services:\n  - {code: "*1*{a}#", handler: small, where: {a: "[1-5]"}}\n'
        '  - {code: "*1*{a}#", handler: big, where: {a: "[6-9]"}}\nscreens:\n  m: {type: final, text: hi}\n'
    )
    menus = parse_menus(text)
    assert [menus.route_for(parse_service_code(c)).route.handler for c in ("*1*3#", "*1*8#")] == [  # type: ignore[union-attr]
        "small",
        "big",
    ]


# --- text helpers --------------------------------------------------------------------------------------


def test_render_and_placeholders() -> None:
    variables = {"msisdn": "2547", "offer": {"mb": 500, "tags": ["a", "b"]}, "none": None, "params": ("9",)}
    assert render("{msisdn}: {offer.mb}MB {offer.tags.1} {params.0}", variables) == "2547: 500MB b 9"
    assert render("{missing}{offer.nope}{offer.tags.7}{msisdn.x}{none}|", variables) == "|"
    assert render("{{literal}} {msisdn}", variables) == "{literal} 2547"
    assert render("{ not a placeholder }", variables) == "{ not a placeholder }"
    assert placeholders("{a} {b.c} {{d}} {1x}") == ["a", "b"]


def test_truncate() -> None:
    assert truncate("short", STANDARD) == "short"
    cut = truncate("word " * 50, STANDARD)
    assert len(cut) <= 182 and cut.endswith("...")
    ucs2 = truncate("д" * 100, STANDARD)
    assert len(ucs2) == 80 and ucs2.endswith("...")


def test_validation() -> None:
    import re
    from decimal import Decimal

    rule = Validation(re.compile("[0-9]+"), Decimal(10), Decimal(100))
    assert [rule.check(v) for v in ("10", "100", "9", "101", "abc", "")] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    length = Validation(min_length=2, max_length=3)
    assert [length.check(v) for v in ("a", "ab", "abcd")] == [False, True, False]
    choice = Validation(choices=("yes", "no"))
    assert [choice.check(v) for v in ("yes", "maybe")] == [True, False]
    numeric = Validation(min=Decimal("0.5"))
    assert [numeric.check(v) for v in ("0.5", "x", "-1")] == [True, False, False]
    assert Validation(max=Decimal(3)).check("4") is False


def test_paginate_at_run_time_cuts_what_cannot_fit() -> None:
    settings = Settings()
    # a header too long for any option beside it: cut so that one option and the navigation fit
    pages = paginate("H" * 300, [("1", "One"), ("2", "Two")], STANDARD, settings, back_on_first=True)
    assert all(len(p.text) <= 182 for p in pages)
    assert pages[0].text.startswith("HHH") and "..." in pages[0].text and pages[0].keys == ("1",)
    # an option too long on its own is cut
    pages = paginate("Pick", [("1", "L" * 300), ("2", "Two")], STANDARD, settings, back_on_first=False)
    assert pages[0].keys == ("1",) and pages[0].text.endswith("...\n99. More") and len(pages[0].text) <= 182
    assert pages[1].text == "2. Two\n0. Back"
    # no options at all
    assert paginate("Only", [], STANDARD, settings, back_on_first=False)[0].text == "Only"
    assert len(paginate("Z" * 300, [], STANDARD, settings, back_on_first=False)[0].text) == 182
    # strict (load time) refuses
    with pytest.raises(ValueError, match="182"):
        paginate("Pick", [("1", "L" * 300)], STANDARD, settings, back_on_first=False, strict=True)


def test_input_choices_and_routes_base() -> None:
    text = (
        'services:\n  - {code: "*1*{a}#", handler: h}\nscreens:\n  q:\n    type: input\n    text: Yes or no?\n'
        "    validate: {choices: [yes, no]}\n    next: q\n"
    )
    menus = parse_menus(text)
    screen = menus.screens["q"]
    assert isinstance(screen, InputScreen) and screen.validation.choices == ("yes", "no")
    assert screen.save_as == "q" and screen.max_retries == 2
    assert menus.routes[0].base == "*1#" and menus.routes[0].handler_name == "h"


@pytest.mark.parametrize(
    ("value", "reason"), [("[1]", "must be a number"), ("nan", "must be a finite number")]
)
def test_numbers(value: str, reason: str) -> None:
    expect_error(
        SERVICES
        + f"screens:\n  m:\n    type: input\n    text: Hi\n    next: m\n    validate: {{min: {value}}}  # <-\n",
        reason,
    )


def test_paginate_without_a_header_cuts_the_option() -> None:
    pages = paginate("", [("1", "L" * 300)], STANDARD, Settings(), back_on_first=True)
    assert len(pages) == 1 and pages[0].text.endswith("...\n0. Back") and len(pages[0].text) <= 182
