"""The menu engine without the network: one MenuSession walked input by input, for the corners the
end-to-end tests do not reach (the navigator is the real one; handlers and providers are the
application's callables, called the way UssdService calls them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from gateway.ussd import CallFailed, MenuSession, Screen, UssdContext, parse_menus
from gateway.ussd.menus import ActionScreen, Option
from protocols.errors import LocalProtocolError
from protocols.ussd import PROFILES

STANDARD = PROFILES["standard"]
Table = Mapping[str, Callable[[UssdContext], Awaitable[Any]]]


def session(text: str, handlers: Table | None = None, providers: Table | None = None) -> MenuSession:
    menus = parse_menus(text)

    async def call(kind: str, name: str, context: UssdContext) -> object:
        table = (handlers or {}) if kind == "handler" else (providers or {})
        return await table[name](context)

    return MenuSession(menus, STANDARD, call, msisdn="254700000001", session_id="s1", service_code="*1#")


MENU = """\
services:
  - {code: "*1#", menu: m}
screens:
  m:
    type: menu
    text: Pick
    navigation: false
    options:
      - {label: Items, next: items}
      - {label: Done, next: done}
  items:
    type: dynamic
    text: Items
    provider: items
    item: "{name}"
    next: done
  done: {type: final, text: "Chose {item}"}
"""


async def test_navigation_off_makes_reserved_inputs_plain_choices() -> None:
    menu = session(MENU)
    first = await menu.start_menu("m")
    assert first == Screen("Pick\n1. Items\n2. Done", final=False)
    assert (await menu.reply("0")).text.startswith("Invalid choice.\nPick")
    assert (await menu.reply("2")) == Screen("Chose ", final=True)
    with pytest.raises(LocalProtocolError, match="has ended"):
        await menu.reply("1")


async def test_item_numbers_skip_the_navigation_inputs_and_text_items() -> None:
    async def items(context: UssdContext) -> list[object]:
        return [f"Item {n}" for n in range(1, 101)]

    menu = session(MENU, providers={"items": items})
    await menu.start_menu("m")
    page = await menu.reply("1")
    while "99. More" in page.text:
        page = await menu.reply("99")
    assert page.text.endswith("101. Item 100\n0. Back")  # 99 is "more": the 99th item is number 100
    assert (await menu.reply("101")).text == "Chose Item 100"


async def test_provider_items_must_be_texts_or_mappings() -> None:
    async def items(context: UssdContext) -> list[object]:
        return [1]

    menu = session(MENU, providers={"items": items})
    await menu.start_menu("m")
    with pytest.raises(CallFailed, match="neither a mapping nor a text"):
        await menu.reply("1")


async def test_handler_screens_must_carry_text() -> None:
    async def odd(context: UssdContext) -> Screen:
        return Screen(42)  # type: ignore[arg-type]

    menu = session(
        'services:\n  - {code: "*1#", handler: odd}\nscreens:\n  m: {type: final, text: hi}\n',
        handlers={"odd": odd},
    )
    with pytest.raises(CallFailed, match="not a str or a Screen"):
        await menu.start_handler("odd")


async def test_reply_before_any_screen_is_our_misuse() -> None:
    with pytest.raises(LocalProtocolError, match="no screen waiting"):
        await session(MENU).reply("1")


async def test_a_wrong_choice_on_a_full_page_shows_the_page_alone() -> None:
    label = "o" * 50
    text = (
        'services:\n  - {code: "*1#", menu: m}\nscreens:\n  m:\n    type: menu\n    text: Head\n'
        "    options:\n" + "".join(f"      - {{label: {label}, next: m}}\n" for _ in range(8))
    )
    menu = session(text)
    first = await menu.start_menu("m")
    assert len(first.text) + len("Invalid choice.\n") > 182
    assert (await menu.reply("9")).text == first.text


async def test_back_keeps_the_page_and_home_needs_an_entry() -> None:
    text = """\
services:
  - {code: "*1#", menu: m}
screens:
  m:
    type: menu
    text: Main
    options:
      - {label: Next, next: n}
  n:
    type: input
    text: Name?
    next: m
"""
    menu = session(text)
    await menu.start_menu("m")
    assert (await menu.reply("1")).text == "Name?"
    assert (await menu.reply("0")).text == "Main\n1. Next"  # back from the input screen
    assert (await menu.reply("1")).text == "Name?"
    assert (await menu.reply("00")).text == "Main\n1. Next"  # home
    assert menu.context().inputs == ("1", "0", "1", "00")


def test_config_defaults() -> None:
    assert Option("1", "One", "m").set == {}
    assert ActionScreen("a", "h").args == {}
    context = UssdContext("254700000001", "s1")
    assert (context.named, context.variables, context.args) == ({}, {}, {})
