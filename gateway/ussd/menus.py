"""USSD menus configured in YAML: the schema, the loader and the screen layout (pagination).

The menu engine follows the checklist of PROTOCOLS.md 1.4: a screen graph from config (menus with
numbered options, input prompts with validation and retries, final screens, dynamic screens filled
at run time by a named provider, action screens that call a named handler), routing by USSD service
code with parameters (TS 22.030 section 6.5.2: ``*123#``, ``*123*500#``), reserved navigation inputs
(back ``0``, home ``00``, more ``99``) and automatic paging to the screen limit of a MAP USSD-String
(160 octets: 182 GSM 7-bit or 80 UCS-2 characters, TS 23.038 / TS 29.002; the limit of the SMSC
profile, ``protocols.ussd.check_screen``). The screens travel in SMPP 3.4 ``ussd_service_op``
(5.3.2.44) dialogues; see ``gateway.ussd.service``.

A file (``configs/ussd/menus.yaml`` is the shipped example)::

    version: 1
    settings:                                     # every field optional
      navigation: {back: "0", home: "00", more: "99", back_label: Back, more_label: More,
                   show_back: true}
      option_format: "{key}. {label}"
      max_invalid: 3                              # wrong menu choices before giving up
      texts: {failure: ..., unknown_service: ..., invalid_choice: ..., too_many_attempts: ...,
              busy: ..., no_items: ...}
    services:
      - code: "*123#"                             # exact code -> a menu
        menu: main
        shortcuts: true                           # *123*1*2# walks options 1 then 2 (default)
      - code: "*123*{mb}#"                        # one parameter named mb -> a one-shot handler
        where: {mb: "100|200|500|1000"}           # regular expressions the parameters must match
        handler: buy_package
        args: {channel: ussd}
      - code: "*124#"                             # an external app; *124*5# gives it text "5"
        http: {url: "http://127.0.0.1:8080/ussd", timeout: 5, network_code: "63902"}
    screens:
      main:
        type: menu                                # menu | input | final (alias text) | dynamic | action
        text: Data shop
        options:
          - {key: 1, label: Buy data, next: buy}
          - {key: 2, label: 100MB, next: confirm, set: {mb: "100"}}
      amount:
        type: input
        text: "Enter MB (50-1000):"
        validate: {regex: "[0-9]+", min: 50, max: 1000}   # also min_length, max_length, choices
        error: Invalid amount.
        max_retries: 2
        save_as: amount
        next: confirm_amount
        navigation: false                         # "0" is an amount here, not "back" (default true)
      my_offers:
        type: dynamic
        text: Your offers
        provider: my_offers
        item: "{name} {mb}MB"
        save_as: offer
        next: confirm_offer
        empty_text: You have no offers right now.
      buy:
        type: action
        handler: buy_package
        args: {mb: "{mb}"}
      done: {type: final, text: "Thank you, {msisdn}."}

Texts take ``{placeholders}`` filled from the session: ``msisdn``, ``service_code``, ``params``,
``session_id``, the named code parameters, what input screens saved, what options ``set`` and the
item a dynamic screen saved (``{offer.mb}``); ``{{`` and ``}}`` are literal braces.

Everything is checked when the file loads, and a mistake is a ``ConfigError`` naming the file, the
line and the reason: unknown fields, unknown screen references, an option numbered twice or on a
navigation input, a service code without a handler (no ``menu`` / ``handler`` / ``http``), two
services on one code, a bad regular expression, a placeholder no screen sets, static text over the
screen limit, and a menu that cannot fit even when paged (its header and one option with the
navigation lines). ``MenuConfig.validate`` also checks handler and provider names against the ones
registered with the service.

Regular expressions (``validate.regex``, ``where``) run on what subscribers type, inside the event
loop, with Python's backtracking ``re``: a pattern such as ``(a+)+$`` takes exponential time on
``aaaa...b`` and would stall every session of the gateway. Two rules bound that cost. At load, a
pattern is refused when a quantifier repeats something that itself holds a quantifier (``(a+)+``,
``([0-9]{1,3}[.]?)+``) or a choice between alternatives that may begin with the same character
(``(a|aa)+``): the two shapes of exponential backtracking. Write the repetition out
(``[0-9]{3}-[0-9]{3}``) or merge the alternatives into a character class (``(a|b)+`` is ``[ab]+``
and is allowed). At run time, an input longer than a USSD string (``MAX_INPUT``: 182 characters,
TS 23.038 / TS 24.090) is refused before any rule runs, so what remains (a few adjacent quantifiers,
polynomial) stays small. A refused input is a wrong input: the screen's error and retries apply.

Paging: a menu or dynamic screen whose text and options exceed the limit is split into pages; the
header stays on the first page, a page with more after it ends with ``99. More`` and a page one can
go back from with ``0. Back`` (on the first page only when there is a previous screen). The length
check of a template counts its placeholders as empty; a rendered text that turns out too long is
paged (options) or cut (texts) at run time, never sent over the limit.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
import yaml.reader
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocols.errors import ConfigError, LocalProtocolError
from protocols.ussd import PROFILES, ServiceCode, UssdProfile, check_screen

__all__ = [
    "MAX_INPUT",
    "ActionScreen",
    "DynamicScreen",
    "FinalScreen",
    "HttpTarget",
    "InputScreen",
    "MenuConfig",
    "MenuScreen",
    "Navigation",
    "Option",
    "Page",
    "PaginationError",
    "Route",
    "RouteMatch",
    "ScreenConfig",
    "Settings",
    "Texts",
    "Validation",
    "fits",
    "load_menus",
    "paginate",
    "parse_menus",
    "placeholders",
    "render",
    "truncate",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, str]:
    return _EMPTY


BUILTIN_VARIABLES = frozenset({"msisdn", "service_code", "params", "session_id"})
"""Placeholders every session has."""

MAX_INPUT = 182
"""The longest input a validation runs on: a USSD string's 182 GSM 7-bit characters (TS 23.038)."""


# --- the schema ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Navigation:
    """The reserved inputs and how their lines read (PROTOCOLS.md 1.4: back and home navigation)."""

    back: str = "0"
    home: str = "00"
    more: str = "99"
    back_label: str = "Back"
    more_label: str = "More"
    show_back: bool = True  # "0. Back" on the first page of a screen there is a way back from

    @property
    def inputs(self) -> frozenset[str]:
        return frozenset((self.back, self.home, self.more))


@dataclass(frozen=True, slots=True)
class Texts:
    """The texts the service shows by itself."""

    failure: str = "Sorry, the service is unavailable. Please try again later."
    unknown_service: str = "Unknown service code."
    invalid_choice: str = "Invalid choice."
    too_many_attempts: str = "Too many invalid attempts. Please try again later."
    busy: str = "The service is busy. Please try again later."
    no_items: str = "Nothing to show right now."


@dataclass(frozen=True, slots=True)
class Settings:
    navigation: Navigation = field(default_factory=Navigation)
    texts: Texts = field(default_factory=Texts)
    option_format: str = "{key}. {label}"
    max_invalid: int = 3
    line: int | None = None
    text_lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def option_line(self, key: str, label: str) -> str:
        return self.option_format.replace("{key}", key).replace("{label}", label)


@dataclass(frozen=True, slots=True)
class Validation:
    """What an input screen accepts: every given rule must hold."""

    regex: re.Pattern[str] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    min_length: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: str) -> bool:
        if len(value) > MAX_INPUT:  # not a USSD string: no rule runs on it (see the module docstring)
            return False
        if self.regex is not None and self.regex.fullmatch(value) is None:
            return False
        if self.min_length is not None and len(value) < self.min_length:
            return False
        if self.max_length is not None and len(value) > self.max_length:
            return False
        if self.choices and value not in self.choices:
            return False
        if self.min is not None or self.max is not None:
            if _NUMBER.fullmatch(value) is None:
                return False
            number = Decimal(value)
            if self.min is not None and number < self.min:
                return False
            if self.max is not None and number > self.max:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    label: str
    next: str
    set: Mapping[str, str] = field(default_factory=_empty)
    line: int = 0


@dataclass(frozen=True, slots=True)
class MenuScreen:
    id: str
    text: str
    options: tuple[Option, ...]
    navigation: bool = True
    line: int = 0
    kind: Literal["menu"] = "menu"


@dataclass(frozen=True, slots=True)
class InputScreen:
    id: str
    text: str
    next: str
    save_as: str
    validation: Validation = field(default_factory=Validation)
    error: str = ""
    max_retries: int = 2
    fail_text: str | None = None
    navigation: bool = True
    line: int = 0
    kind: Literal["input"] = "input"


@dataclass(frozen=True, slots=True)
class FinalScreen:
    id: str
    text: str
    line: int = 0
    kind: Literal["final"] = "final"


@dataclass(frozen=True, slots=True)
class DynamicScreen:
    id: str
    text: str
    provider: str
    item: str
    next: str
    save_as: str = "item"
    empty_text: str | None = None
    args: Mapping[str, str] = field(default_factory=_empty)
    navigation: bool = True
    line: int = 0
    kind: Literal["dynamic"] = "dynamic"


@dataclass(frozen=True, slots=True)
class ActionScreen:
    id: str
    handler: str
    args: Mapping[str, str] = field(default_factory=_empty)
    line: int = 0
    kind: Literal["action"] = "action"


ScreenConfig = MenuScreen | InputScreen | FinalScreen | DynamicScreen | ActionScreen


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """A service code delegated to an external web app (PROTOCOLS.md 1.2)."""

    url: str
    timeout: float = 10.0
    network_code: str = ""


@dataclass(frozen=True, slots=True)
class CodeParam:
    """One ``*``-separated parameter of a service code pattern: a literal or a ``{name}``."""

    literal: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One service code and what answers it: a ``menu`` (entry screen), a one-shot ``handler`` or an
    ``http`` app."""

    code: str
    prefix: str
    digits: str
    params: tuple[CodeParam, ...] = ()
    where: Mapping[str, re.Pattern[str]] = field(default_factory=lambda: MappingProxyType({}))
    menu: str | None = None
    handler: str | None = None
    http: HttpTarget | None = None
    args: Mapping[str, str] = field(default_factory=_empty)
    shortcuts: bool = True
    line: int = 0

    @property
    def base(self) -> str:
        return f"{self.prefix}{self.digits}#"

    @property
    def is_exact(self) -> bool:
        return all(p.name is None for p in self.params)

    @property
    def handler_name(self) -> str | None:
        """The name the service calls: the handler, ``http:<code>`` for an HTTP app, None for a menu."""
        if self.http is not None:
            return f"http:{self.code}"
        return self.handler

    def match(self, code: ServiceCode) -> dict[str, str] | None:
        """The named parameters when ``code`` matches this route, else None."""
        if code.prefix != self.prefix or code.code != self.digits or len(code.params) != len(self.params):
            return None
        named: dict[str, str] = {}
        for spec, value in zip(self.params, code.params, strict=True):
            if spec.name is None:
                if value != spec.literal:
                    return None
                continue
            pattern = self.where.get(spec.name, _DEFAULT_PARAM)
            if pattern.fullmatch(value) is None:
                return None
            named[spec.name] = value
        return named


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    code: ServiceCode
    named: Mapping[str, str]
    shortcut_inputs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MenuConfig:
    """A loaded menu file. ``screens`` by id, ``routes`` in file order."""

    file: str
    settings: Settings
    routes: tuple[Route, ...]
    screens: Mapping[str, ScreenConfig]

    def route_for(self, dialled: ServiceCode) -> RouteMatch | None:
        """Exact codes first, then patterns in file order, then the base code: a menu walked with the
        parameters as shortcut inputs, or an HTTP app (which gets them in ``text``); None when
        nothing answers."""
        for route in self.routes:
            if route.is_exact and route.match(dialled) is not None:
                return RouteMatch(route, dialled, _EMPTY)
        for route in self.routes:
            if not route.is_exact:
                named = route.match(dialled)
                if named is not None:
                    return RouteMatch(route, dialled, MappingProxyType(named))
        if dialled.params:
            base = ServiceCode(dialled.prefix, dialled.code)
            for route in self.routes:
                if route.params or route.match(base) is None:
                    continue
                if route.menu is not None and route.shortcuts:
                    return RouteMatch(route, dialled, _EMPTY, dialled.params)
                if route.http is not None:  # the app gets the parameters at the start of ``text``
                    return RouteMatch(route, dialled, _EMPTY)
        return None

    @property
    def http_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.http is not None)

    def validate(
        self,
        profile: UssdProfile | None = None,
        *,
        handlers: Iterable[str] | None = None,
        providers: Iterable[str] | None = None,
    ) -> None:
        """Check the screens against ``profile``'s limit and, when given, the handler and provider
        names against the registered ones. Raises ConfigError with the file and line."""
        profile = profile or PROFILES["standard"]
        _check_lengths(self, profile)
        if handlers is not None:
            known = frozenset(handlers)
            for route in self.routes:
                if route.handler is not None and route.handler not in known:
                    raise ConfigError(_unknown("handler", route.handler, known), self.file, route.line)
            for screen in self.screens.values():
                if isinstance(screen, ActionScreen) and screen.handler not in known:
                    raise ConfigError(_unknown("handler", screen.handler, known), self.file, screen.line)
        if providers is not None:
            known = frozenset(providers)
            for screen in self.screens.values():
                if isinstance(screen, DynamicScreen) and screen.provider not in known:
                    raise ConfigError(_unknown("provider", screen.provider, known), self.file, screen.line)


def _unknown(what: str, name: str, known: frozenset[str]) -> str:
    listed = ", ".join(sorted(known)) or "none"
    return f"no {what} named {name!r} is registered (registered: {listed})"


# --- text: placeholders, length, paging -------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\}")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_DEFAULT_PARAM = re.compile(r"[0-9+]+")


def placeholders(template: str) -> list[str]:
    """The root names of the placeholders in ``template`` (``offer`` for ``{offer.mb}``)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def _lookup(variables: Mapping[str, object], name: str, path: str) -> str:
    value: object = variables.get(name)
    for part in path.split(".")[1:]:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = None
    return "" if value is None else str(value)


def render(template: str, variables: Mapping[str, object]) -> str:
    """``template`` with each ``{name}`` / ``{name.field}`` replaced from ``variables`` (missing: empty)."""

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        return _lookup(variables, match.group(1), match.group(2))

    return _PLACEHOLDER.sub(substitute, template)


def fits(text: str, profile: UssdProfile) -> bool:
    """True when ``text`` travels as one USSD screen under ``profile``."""
    try:
        check_screen(text, profile)
    except LocalProtocolError:
        return False
    return True


def _squeeze(text: str, build: Callable[[str], str], profile: UssdProfile, ellipsis: str = "...") -> str:
    """The longest cut of ``text`` (ending in ``ellipsis``) for which ``build(cut)`` fits; "" if none."""
    if fits(build(text), profile):
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(build(text[:middle].rstrip() + ellipsis), profile):
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis if low else ""


def truncate(text: str, profile: UssdProfile) -> str:
    """``text`` cut (with "...") to the longest prefix that fits one screen."""
    return _squeeze(text, lambda t: t, profile)


class PaginationError(ValueError):
    """A screen cannot fit even when paged (its header, or one option with the navigation lines)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paged screen: its text, the option keys it shows and its navigation lines."""

    text: str
    keys: tuple[str, ...]
    more: bool
    back: bool


def _compose(parts: Sequence[str]) -> str:
    return "\n".join(p for p in parts if p)


def paginate(
    header: str,
    options: Sequence[tuple[str, str]],
    profile: UssdProfile,
    settings: Settings,
    *,
    back_on_first: bool,
    strict: bool = False,
) -> tuple[Page, ...]:
    """Split ``header`` and the ``(key, label)`` options into pages that each fit one screen.

    The header shows on the first page only; every page but the last ends with the "more" line,
    every page but the first with the "back" line (the first too with ``back_on_first``). With
    ``strict`` a screen that cannot fit raises PaginationError; otherwise a header or an option that
    is too long on its own is cut to fit (at run time the subscriber always gets a screen).
    """
    nav = settings.navigation
    more_line = settings.option_line(nav.more, nav.more_label)
    back_line = settings.option_line(nav.back, nav.back_label)
    lines = [settings.option_line(key, label) for key, label in options]
    pages: list[Page] = []
    start = 0
    while True:
        first = not pages
        back = back_on_first if first else True
        text, end = _next_page(
            header if first else "",
            lines,
            start,
            (more_line, back_line if back else ""),
            profile,
            strict=strict,
        )
        pages.append(Page(text, tuple(k for k, _ in options[start:end]), end < len(lines), back))
        start = end
        if start >= len(lines):
            return tuple(pages)


def _next_page(
    head: str, lines: list[str], start: int, nav: tuple[str, str], profile: UssdProfile, *, strict: bool
) -> tuple[str, int]:
    """The text of the page that starts at option ``start`` and where the next page starts."""
    count = len(lines)
    more_line, back_line = nav

    def compose(end: int, head: str = head, line: str | None = None) -> str:
        shown = lines[start:end] if line is None else [line]
        return _compose([head, *shown, more_line if end < count else "", back_line])

    best: int | None = None
    if not count:
        best = 0 if fits(compose(0), profile) else None
    elif fits(compose(count), profile):
        best = count  # the rest fits on this page (and needs no "More")
    else:
        # with "More" shown, a page only grows with each option added: stop at the first misfit
        for end in range(start + 1, count):
            if not fits(compose(end), profile):
                break
            best = end
    if best is not None:
        return compose(best), best
    end = min(start + 1, count)
    if strict:
        raise PaginationError(_overflow(compose(end), profile))
    # run time: cut the header first, then the one option, so that a page fits
    line = lines[start] if count else ""
    if head:
        head = _squeeze(head, lambda h: compose(end, h, line), profile)
    if count and not fits(compose(end, head, line), profile):
        lines[start] = _squeeze(line, lambda x: compose(end, head, x), profile)
    return truncate(compose(end, head), profile), end


def _overflow(text: str, profile: UssdProfile) -> str:
    try:
        check_screen(text, profile)
    except LocalProtocolError as exc:
        return str(exc)
    return "it does not fit"  # pragma: no cover - only called for text that does not fit


def _check_text(config: MenuConfig, text: str, profile: UssdProfile, what: str, line: int | None) -> None:
    static = _PLACEHOLDER.sub(lambda m: {"{{": "{", "}}": "}"}.get(m.group(0), ""), text)
    try:
        check_screen(static, profile)
    except LocalProtocolError as exc:
        raise ConfigError(f"{what} is over the screen limit: {exc}", config.file, line) from None


def _check_lengths(config: MenuConfig, profile: UssdProfile) -> None:
    settings = config.settings
    texts = settings.texts
    for name in Texts.__slots__:
        line = settings.text_lines.get(name, settings.line)
        _check_text(config, getattr(texts, name), profile, f"settings text {name!r}", line)
    blank: dict[str, object] = {}
    for screen in config.screens.values():
        where = f"screen {screen.id!r}"
        if isinstance(screen, MenuScreen):
            try:
                paginate(
                    render(screen.text, blank),
                    [(o.key, render(o.label, blank)) for o in screen.options],
                    profile,
                    settings,
                    back_on_first=settings.navigation.show_back and screen.navigation,
                    strict=True,
                )
            except PaginationError as exc:
                raise ConfigError(
                    f"{where} cannot fit in one USSD screen even paged: {exc}", config.file, screen.line
                ) from None
        elif isinstance(screen, InputScreen):
            _check_text(config, screen.text, profile, f"{where} text", screen.line)
            if screen.error:
                _check_text(config, f"{screen.error}\n{screen.text}", profile, f"{where} error", screen.line)
            if screen.fail_text is not None:
                _check_text(config, screen.fail_text, profile, f"{where} fail_text", screen.line)
        elif isinstance(screen, FinalScreen):
            _check_text(config, screen.text, profile, f"{where} text", screen.line)
        elif isinstance(screen, DynamicScreen):
            nav = settings.navigation
            header = _compose(
                [
                    screen.text,
                    settings.option_line(nav.more, nav.more_label),
                    settings.option_line(nav.back, nav.back_label),
                ]
            )
            _check_text(config, header, profile, f"{where} text with its navigation lines", screen.line)
            if screen.empty_text is not None:
                _check_text(config, screen.empty_text, profile, f"{where} empty_text", screen.line)


# --- regular expressions that backtrack exponentially ------------------------------------------------

# The standard library's own parser of ``re`` patterns (typeshed has no stub for it): the tree it gives
# is the one ``re`` runs, escapes and character classes already resolved.
_re_parser: Any = importlib.import_module("re._parser")
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _first_chars(items: Any) -> frozenset[int] | None:
    """The characters a parsed (sub)pattern can begin with, or None when that is not a small known set."""
    if not items:
        return None
    op, arg = items[0]
    name = str(op)
    if name == "LITERAL":
        return frozenset({arg})
    if name == "SUBPATTERN":
        return _first_chars(arg[-1])
    if name == "IN":
        chars: set[int] = set()
        for member, value in arg:
            if str(member) == "LITERAL":
                chars.add(value)
            elif str(member) == "RANGE" and value[1] - value[0] < 256:
                chars.update(range(value[0], value[1] + 1))
            else:  # a negated set or a category (\d, \w): too wide to tell apart
                return None
        return frozenset(chars)
    return None


def _backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` may backtrack exponentially (see the module docstring), or None."""

    def walk(items: Any, repeated: bool) -> str | None:
        for op, arg in items:
            name = str(op)
            found: str | None = None
            if name in _REPEATS:
                _, high, body = arg
                many = high > 1
                if many and repeated:
                    return "nested quantifiers"
                found = walk(body, repeated or many)
            elif name == "BRANCH":
                branches = arg[1]
                if repeated:
                    starts = [_first_chars(branch) for branch in branches]
                    seen: set[int] = set()
                    for start in starts:
                        if start is None or seen & start:
                            return "alternatives that can match the same text under a quantifier"
                        seen |= start
                for branch in branches:
                    found = found or walk(branch, repeated)
            elif name in ("SUBPATTERN", "ATOMIC_GROUP", "ASSERT", "ASSERT_NOT"):
                found = walk(arg if name == "ATOMIC_GROUP" else arg[-1], repeated)
            elif name == "GROUPREF_EXISTS":
                found = walk(arg[1], repeated) or (walk(arg[2], repeated) if arg[2] else None)
            if found is not None:
                return found
        return None

    return walk(_re_parser.parse(pattern), False)


# --- loading ---------------------------------------------------------------------------------------

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HANDLER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_OPTION_KEY = re.compile(r"[0-9*#]{1,8}")
_NAV_INPUT = re.compile(r"[0-9*#]{1,8}")
_CODE = re.compile(r"([*#]{1,2})([0-9]+)((?:\*(?:[0-9+]*|\{[A-Za-z_][A-Za-z0-9_]*\}))*)#")

_TOP_FIELDS = frozenset({"version", "settings", "services", "screens"})
_SETTINGS_FIELDS = frozenset({"navigation", "texts", "option_format", "max_invalid"})
_NAV_FIELDS = frozenset({"back", "home", "more", "back_label", "more_label", "show_back"})
_ROUTE_FIELDS = frozenset({"code", "menu", "handler", "http", "args", "where", "shortcuts"})
_HTTP_FIELDS = frozenset({"url", "timeout", "network_code"})
_OPTION_FIELDS = frozenset({"key", "label", "next", "set"})
_VALIDATE_FIELDS = frozenset({"regex", "min", "max", "min_length", "max_length", "choices"})
_SCREEN_FIELDS: Mapping[str, frozenset[str]] = {
    "menu": frozenset({"type", "text", "options", "navigation"}),
    "input": frozenset(
        {"type", "text", "next", "save_as", "validate", "error", "max_retries", "fail_text", "navigation"}
    ),
    "final": frozenset({"type", "text"}),
    "dynamic": frozenset(
        {"type", "text", "provider", "item", "next", "save_as", "empty_text", "args", "navigation"}
    ),
    "action": frozenset({"type", "handler", "args"}),
}
_SCREEN_TYPES = {
    "menu": "menu",
    "input": "input",
    "final": "final",
    "text": "final",
    "dynamic": "dynamic",
    "action": "action",
}

Fields = dict[str, tuple[Node, Node]]


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Parser:
    """Walks the composed YAML node tree so that every error names its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.variables: set[str] = set(BUILTIN_VARIABLES)
        # (template, line, what) checked once every variable is known
        self.templates: list[tuple[str, int, str]] = []
        # (screen id, line, what) checked once every screen is known
        self.references: list[tuple[str, int, str]] = []

    def fail(self, node: Node | None, reason: str) -> ConfigError:
        return ConfigError(reason, self.file, None if node is None else _line(node))

    # --- scalars ---

    def mapping(self, node: Node, what: str, allowed: frozenset[str] | None) -> Fields:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        fields: Fields = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag not in (_STR_TAG, _INT_TAG):
                raise self.fail(key_node, f"{what}: keys must be plain words")
            name = str(key_node.value)
            if name in fields:
                raise self.fail(key_node, f"{what}: {name!r} appears twice")
            if allowed is not None and name not in allowed:
                raise self.fail(
                    key_node, f"{what}: unknown field {name!r} (known: {', '.join(sorted(allowed))})"
                )
            fields[name] = (key_node, value_node)
        return fields

    def text(self, node: Node, what: str, *, allow_empty: bool = False) -> str:
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            raise self.fail(node, f"{what} must be a value")
        value = str(node.value).rstrip()
        if not value and not allow_empty:
            raise self.fail(node, f"{what} must not be empty")
        return value

    def template(self, node: Node, what: str, *, allow_empty: bool = False) -> str:
        value = self.text(node, what, allow_empty=allow_empty)
        self.templates.append((value, _line(node), what))
        return value

    def ident(self, node: Node, what: str) -> str:
        value = self.text(node, what)
        if not _IDENT.fullmatch(value):
            raise self.fail(node, f"{what} {value!r} must be a name (letters, digits, _)")
        return value

    def boolean(self, node: Node, what: str) -> bool:
        if not isinstance(node, ScalarNode) or node.tag != _BOOL_TAG:
            raise self.fail(node, f"{what} must be true or false")
        return str(node.value).lower() in ("true", "yes", "on", "y")

    def integer(self, node: Node, what: str, low: int, high: int) -> int:
        if (
            not isinstance(node, ScalarNode)
            or node.tag != _INT_TAG
            or not re.fullmatch(r"[0-9]+", node.value)
        ):
            # the range, not only "a whole number": -3 is one, and the reason it is wrong is the bound
            got = ""
            if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
                got = f", got {node.value!r}" if node.tag == _STR_TAG else f", got {node.value}"
            raise self.fail(node, f"{what} must be a whole number from {low} to {high}{got}")
        value = int(node.value)
        if not low <= value <= high:
            raise self.fail(node, f"{what} must be {low}..{high}, got {value}")
        return value

    def number(self, node: Node, what: str) -> Decimal:
        if not isinstance(node, ScalarNode) or node.tag not in (_INT_TAG, _FLOAT_TAG, _STR_TAG):
            raise self.fail(node, f"{what} must be a number")
        if node.tag == _FLOAT_TAG and str(node.value).lower().lstrip("+-") in (".inf", ".nan"):
            raise self.fail(node, f"{what} must be a finite number")
        try:
            value = Decimal(str(node.value))
        except InvalidOperation:
            raise self.fail(node, f"{what} must be a number, got {node.value!r}") from None
        if not value.is_finite():
            raise self.fail(node, f"{what} must be a finite number")
        return value

    def regex(self, node: Node, what: str) -> re.Pattern[str]:
        value = self.text(node, what)
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise self.fail(node, f"{what} {value!r} is not a valid regular expression: {exc}") from None
        risk = _backtracking_risk(value)
        if risk is not None:
            raise self.fail(
                node,
                f"{what} {value!r} can take exponential time on subscriber input ({risk}): "
                "spell the repetition out or use a character class",
            )
        return compiled

    def string_map(self, node: Node, what: str) -> Mapping[str, str]:
        """A mapping of names to templates (``args``, ``set``)."""
        fields = self.mapping(node, what, None)
        out: dict[str, str] = {}
        for name, (key_node, value_node) in fields.items():
            if not _IDENT.fullmatch(name):
                raise self.fail(key_node, f"{what}: {name!r} must be a name (letters, digits, _)")
            out[name] = self.template(value_node, f"{what}.{name}", allow_empty=True)
        return MappingProxyType(out)

    def reference(self, node: Node, what: str) -> str:
        screen_id = self.ident(node, what)
        self.references.append((screen_id, _line(node), what))
        return screen_id

    # --- the document ---

    def parse(self, text: str) -> MenuConfig:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else int(mark.line) + 1
            raise ConfigError(f"not valid YAML: {exc.problem or exc}", self.file, line) from None
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            raise ConfigError(f"not valid YAML: {exc.reason}", self.file, line) from None
        if root is None:
            raise ConfigError("the menu file is empty", self.file)
        top = self.mapping(root, "the menu file", _TOP_FIELDS)
        if "version" in top:
            self.integer(top["version"][1], "version", 1, 1)
        settings = self.settings(top["settings"][1]) if "settings" in top else Settings()
        if "screens" not in top:
            raise self.fail(root, "the menu file has no 'screens'")
        if "services" not in top:
            raise self.fail(root, "the menu file has no 'services'")
        screens = self.screens(top["screens"][1], settings)
        routes = self.routes(top["services"][1])
        for screen_id, line, what in self.references:
            if screen_id not in screens:
                known = ", ".join(sorted(screens))
                raise ConfigError(f"{what}: no screen {screen_id!r} (screens: {known})", self.file, line)
        for template, line, what in self.templates:
            for name in placeholders(template):
                if name not in self.variables:
                    raise ConfigError(
                        f"{what}: placeholder {{{name}}} is never set "
                        f"(known: {', '.join(sorted(self.variables))})",
                        self.file,
                        line,
                    )
        return MenuConfig(self.file, settings, routes, MappingProxyType(screens))

    def settings(self, node: Node) -> Settings:
        fields = self.mapping(node, "settings", _SETTINGS_FIELDS)
        navigation = Navigation()
        if "navigation" in fields:
            nav_node = fields["navigation"][1]
            nav = self.mapping(nav_node, "settings.navigation", _NAV_FIELDS)
            values: dict[str, str | bool] = {}
            for name, (_, value_node) in nav.items():
                if name == "show_back":
                    values[name] = self.boolean(value_node, "settings.navigation.show_back")
                    continue
                value = self.text(value_node, f"settings.navigation.{name}")
                if name in ("back", "home", "more") and not _NAV_INPUT.fullmatch(value):
                    raise self.fail(
                        value_node, f"settings.navigation.{name} must be keypad input (0-9, *, #)"
                    )
                values[name] = value
            navigation = Navigation(**values)  # type: ignore[arg-type]
            if len(navigation.inputs) != 3:
                raise self.fail(nav_node, "settings.navigation: back, home and more must be different inputs")
        texts = Texts()
        text_lines: dict[str, int] = {}
        if "texts" in fields:
            given = self.mapping(fields["texts"][1], "settings.texts", frozenset(Texts.__slots__))
            texts = Texts(**{name: self.text(v, f"settings.texts.{name}") for name, (_, v) in given.items()})
            text_lines = {name: _line(v) for name, (_, v) in given.items()}
        option_format = "{key}. {label}"
        if "option_format" in fields:
            fmt_node = fields["option_format"][1]
            option_format = self.text(fmt_node, "settings.option_format")
            if "{key}" not in option_format or "{label}" not in option_format:
                raise self.fail(fmt_node, "settings.option_format must contain {key} and {label}")
        max_invalid = 3
        if "max_invalid" in fields:
            max_invalid = self.integer(fields["max_invalid"][1], "settings.max_invalid", 0, 100)
        return Settings(
            navigation, texts, option_format, max_invalid, _line(node), MappingProxyType(text_lines)
        )

    def routes(self, node: Node) -> tuple[Route, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(node, "services must be a non-empty list")
        routes: list[Route] = []
        seen: dict[tuple[object, ...], int] = {}
        for item in node.value:
            route = self.route(item)
            where = tuple(sorted((name, pattern.pattern) for name, pattern in route.where.items()))
            shape = (route.prefix, route.digits, tuple(p.literal for p in route.params), where)
            if shape in seen:
                raise self.fail(
                    item, f"service code {route.code} is given twice (first at line {seen[shape]})"
                )
            seen[shape] = route.line
            routes.append(route)
        return tuple(routes)

    def route(self, node: Node) -> Route:
        fields = self.mapping(node, "service", _ROUTE_FIELDS)
        if "code" not in fields:
            raise self.fail(node, "service without a code")
        code_node = fields["code"][1]
        code = self.text(code_node, "code")
        match = _CODE.fullmatch(code)
        if match is None:
            raise self.fail(
                code_node, f"code {code!r} is not a USSD service code like *123# or *123*{{amount}}#"
            )
        prefix, digits, rest = match.groups()
        params: list[CodeParam] = []
        names: set[str] = set()
        for part in rest.split("*")[1:]:
            if part.startswith("{"):
                name = part[1:-1]
                if name in names:
                    raise self.fail(code_node, f"code {code}: parameter {{{name}}} appears twice")
                names.add(name)
                params.append(CodeParam(name=name))
            else:
                params.append(CodeParam(literal=part))
        self.variables.update(names)
        where: dict[str, re.Pattern[str]] = {}
        if "where" in fields:
            where_fields = self.mapping(fields["where"][1], "where", None)
            for name, (key_node, value_node) in where_fields.items():
                if name not in names:
                    raise self.fail(key_node, f"where: {name!r} is not a parameter of {code}")
                where[name] = self.regex(value_node, f"where.{name}")
        targets = [t for t in ("menu", "handler", "http") if t in fields]
        if not targets:
            raise self.fail(node, f"service code {code} has no handler: give menu, handler or http")
        if len(targets) > 1:
            raise self.fail(node, f"service code {code} has more than one handler: {', '.join(targets)}")
        menu = handler = None
        http = None
        if "menu" in fields:
            menu = self.reference(fields["menu"][1], f"service {code} menu")
        elif "handler" in fields:
            handler = self.handler_name(fields["handler"][1], "handler")
        else:
            http = self.http(fields["http"][1])
        args = self.string_map(fields["args"][1], "args") if "args" in fields else _EMPTY
        if args and menu is not None:
            raise self.fail(fields["args"][0], "args go with a handler, not a menu")
        shortcuts = True
        if "shortcuts" in fields:
            shortcuts = self.boolean(fields["shortcuts"][1], "shortcuts")
        return Route(
            code=code,
            prefix=prefix,
            digits=digits,
            params=tuple(params),
            where=MappingProxyType(where),
            menu=menu,
            handler=handler,
            http=http,
            args=args,
            shortcuts=shortcuts,
            line=_line(node),
        )

    def handler_name(self, node: Node, what: str) -> str:
        value = self.text(node, what)
        if not _HANDLER_NAME.fullmatch(value):
            raise self.fail(node, f"{what} {value!r} must be a name (letters, digits, _ and .)")
        return value

    def http(self, node: Node) -> HttpTarget:
        fields = self.mapping(node, "http", _HTTP_FIELDS)
        if "url" not in fields:
            raise self.fail(node, "http needs a url")
        url_node = fields["url"][1]
        url = self.text(url_node, "http.url")
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise self.fail(url_node, f"http.url {url!r} must be an http:// or https:// URL")
        timeout = 10.0
        if "timeout" in fields:
            timeout_node = fields["timeout"][1]
            value = self.number(timeout_node, "http.timeout")
            if not 0 < value <= 60:
                raise self.fail(
                    timeout_node, f"http.timeout must be more than 0 and at most 60 s, got {value}"
                )
            timeout = float(value)
        network_code = ""
        if "network_code" in fields:
            network_code = self.text(fields["network_code"][1], "http.network_code")
        return HttpTarget(url, timeout, network_code)

    def screens(self, node: Node, settings: Settings) -> dict[str, ScreenConfig]:
        fields = self.mapping(node, "screens", None)
        if not fields:
            raise self.fail(node, "screens must not be empty")
        screens: dict[str, ScreenConfig] = {}
        for screen_id, (key_node, value_node) in fields.items():
            if not _IDENT.fullmatch(screen_id):
                raise self.fail(key_node, f"screen id {screen_id!r} must be a name (letters, digits, _)")
            screens[screen_id] = self.screen(screen_id, key_node, value_node, settings)
        return screens

    def screen(self, screen_id: str, key_node: Node, node: Node, settings: Settings) -> ScreenConfig:
        where = f"screen {screen_id!r}"
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        type_node = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == "type"), None)
        if type_node is None:
            raise self.fail(key_node, f"{where} has no type (menu, input, final, dynamic or action)")
        kind = _SCREEN_TYPES.get(self.text(type_node, f"{where} type"))
        if kind is None:
            raise self.fail(type_node, f"{where}: type must be menu, input, final, dynamic or action")
        fields = self.mapping(node, where, _SCREEN_FIELDS[kind])
        line = _line(key_node)

        def need(name: str) -> Node:
            if name not in fields:
                raise self.fail(key_node, f"{where}: a {kind} screen needs {name}")
            return fields[name][1]

        def navigation() -> bool:
            return (
                self.boolean(fields["navigation"][1], f"{where} navigation")
                if "navigation" in fields
                else True
            )

        if kind == "menu":
            text = self.template(need("text"), f"{where} text", allow_empty=True)
            options = self.options(need("options"), where, settings)
            return MenuScreen(screen_id, text, options, navigation(), line)
        if kind == "input":
            text = self.template(need("text"), f"{where} text")
            next_id = self.reference(need("next"), f"{where} next")
            save_as = (
                self.ident(fields["save_as"][1], f"{where} save_as") if "save_as" in fields else screen_id
            )
            self.variables.add(save_as)
            validation = (
                self.validation(fields["validate"][1], where) if "validate" in fields else Validation()
            )
            error = self.template(fields["error"][1], f"{where} error") if "error" in fields else ""
            max_retries = 2
            if "max_retries" in fields:
                max_retries = self.integer(fields["max_retries"][1], f"{where} max_retries", 0, 20)
            fail_text = None
            if "fail_text" in fields:
                fail_text = self.template(fields["fail_text"][1], f"{where} fail_text")
            return InputScreen(
                screen_id,
                text,
                next_id,
                save_as,
                validation,
                error,
                max_retries,
                fail_text,
                navigation(),
                line,
            )
        if kind == "final":
            return FinalScreen(screen_id, self.template(need("text"), f"{where} text"), line)
        if kind == "dynamic":
            text = self.template(need("text"), f"{where} text", allow_empty=True)
            provider = self.handler_name(need("provider"), f"{where} provider")
            item = self.text(need("item"), f"{where} item")  # item fields are only known at run time
            next_id = self.reference(need("next"), f"{where} next")
            save_as = self.ident(fields["save_as"][1], f"{where} save_as") if "save_as" in fields else "item"
            self.variables.add(save_as)
            empty_text = None
            if "empty_text" in fields:
                empty_text = self.template(fields["empty_text"][1], f"{where} empty_text")
            args = self.string_map(fields["args"][1], f"{where} args") if "args" in fields else _EMPTY
            return DynamicScreen(
                screen_id, text, provider, item, next_id, save_as, empty_text, args, navigation(), line
            )
        handler = self.handler_name(need("handler"), f"{where} handler")
        args = self.string_map(fields["args"][1], f"{where} args") if "args" in fields else _EMPTY
        return ActionScreen(screen_id, handler, args, line)

    def options(self, node: Node, where: str, settings: Settings) -> tuple[Option, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(node, f"{where}: options must be a non-empty list")
        reserved = settings.navigation.inputs
        options: list[Option] = []
        seen: dict[str, int] = {}
        for position, item in enumerate(node.value, 1):
            fields = self.mapping(item, f"{where} option", _OPTION_FIELDS)
            key = str(position)
            if "key" in fields:
                key_node = fields["key"][1]
                key = self.text(key_node, f"{where} option key")
                if not _OPTION_KEY.fullmatch(key):
                    raise self.fail(key_node, f"{where}: option key {key!r} must be keypad input (0-9, *, #)")
            if key in seen:
                raise self.fail(item, f"{where}: option {key} is numbered twice (first at line {seen[key]})")
            if key in reserved:
                raise self.fail(
                    item, f"{where}: option {key} collides with a navigation input (back, home, more)"
                )
            seen[key] = _line(item)
            if "label" not in fields:
                raise self.fail(item, f"{where}: option {key} has no label")
            label = self.template(fields["label"][1], f"{where} option {key} label")
            if "next" not in fields:
                raise self.fail(item, f"{where}: option {key} leads nowhere: give next")
            next_id = self.reference(fields["next"][1], f"{where} option {key} next")
            values = _EMPTY
            if "set" in fields:
                values = self.string_map(fields["set"][1], f"{where} option {key} set")
                self.variables.update(values)
            options.append(Option(key, label, next_id, values, _line(item)))
        return tuple(options)

    def validation(self, node: Node, where: str) -> Validation:
        fields = self.mapping(node, f"{where} validate", _VALIDATE_FIELDS)
        regex = self.regex(fields["regex"][1], f"{where} validate.regex") if "regex" in fields else None
        low = self.number(fields["min"][1], f"{where} validate.min") if "min" in fields else None
        high = self.number(fields["max"][1], f"{where} validate.max") if "max" in fields else None
        if low is not None and high is not None and low > high:
            raise self.fail(fields["max"][1], f"{where} validate: max {high} is below min {low}")
        min_length = max_length = None
        if "min_length" in fields:
            min_length = self.integer(fields["min_length"][1], f"{where} validate.min_length", 0, 182)
        if "max_length" in fields:
            max_length = self.integer(fields["max_length"][1], f"{where} validate.max_length", 1, 182)
        if min_length is not None and max_length is not None and min_length > max_length:
            raise self.fail(fields["max_length"][1], f"{where} validate: max_length is below min_length")
        choices: tuple[str, ...] = ()
        if "choices" in fields:
            choices_node = fields["choices"][1]
            if not isinstance(choices_node, SequenceNode) or not choices_node.value:
                raise self.fail(choices_node, f"{where} validate.choices must be a non-empty list")
            choices = tuple(self.text(c, f"{where} validate.choices") for c in choices_node.value)
        return Validation(regex, low, high, min_length, max_length, choices)


def parse_menus(
    text: str,
    *,
    file: str = "<string>",
    profile: UssdProfile | None = None,
    handlers: Iterable[str] | None = None,
    providers: Iterable[str] | None = None,
) -> MenuConfig:
    """Parse and validate a menu file given as text (see the module docstring for the schema)."""
    config = _Parser(file).parse(text)
    config.validate(profile, handlers=handlers, providers=providers)
    return config


def load_menus(
    path: str | Path,
    *,
    profile: UssdProfile | None = None,
    handlers: Iterable[str] | None = None,
    providers: Iterable[str] | None = None,
) -> MenuConfig:
    """Load and validate the menu file at ``path``; every mistake is a ConfigError with file and line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the menu file: {exc}", name) from None
    return parse_menus(text, file=name, profile=profile, handlers=handlers, providers=providers)
