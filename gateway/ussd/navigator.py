"""One subscriber's walk through the configured USSD screens (the menu engine of PROTOCOLS.md 1.4).

A USSD dialogue (3GPP TS 22.090 and TS 24.090: the network answers a mobile-initiated request with
screens, each reply of the user coming back in the same dialogue; ``gateway.ussd.service`` carries it
in SMPP 3.4 ``ussd_service_op`` / ``its_session_info``, sections 5.3.2.44 / 5.3.2.43) is driven
here screen by screen: ``start_menu`` / ``start_handler`` give the first screen, ``reply`` the next
one for each input of the user. A ``Screen`` with ``final`` ends the dialogue.

Navigation: the reserved inputs of ``Settings.navigation`` go back a page or a screen, home to the
entry screen, or to the next page; a menu or dynamic screen accepts only the keys of the page shown;
an input screen validates, saves the value under ``save_as`` and re-prompts with its error text
until ``max_retries``; a menu gives up after ``max_invalid`` wrong choices. Handlers and providers
are called through the ``Caller`` the service gives (which applies the timeouts); a handler that
answers with a non-final ``Screen`` keeps the dialogue, and every later input goes to it (this is how
an HTTP app behind the aggregator API of PROTOCOLS.md 1.2 runs a whole dialogue).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from gateway.ussd.menus import (
    ActionScreen,
    DynamicScreen,
    FinalScreen,
    InputScreen,
    MenuConfig,
    MenuScreen,
    Page,
    fits,
    paginate,
    render,
)
from protocols.errors import GatewayError, LocalProtocolError
from protocols.ussd import UssdProfile

__all__ = [
    "CallFailed",
    "Caller",
    "Handler",
    "Item",
    "MenuSession",
    "Provider",
    "Screen",
    "UssdContext",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _empty() -> Mapping[str, str]:
    return _EMPTY


MAX_STACK = 50  # screens remembered for "back"; the oldest are forgotten


@dataclass(frozen=True, slots=True)
class Screen:
    """What the subscriber sees next: ``final`` ends the dialogue (PSSR response), otherwise the
    dialogue continues (USSR request) and the user's answer comes back."""

    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class UssdContext:
    """What a handler or provider knows about the dialogue that calls it.

    - ``msisdn``: the subscriber; ``session_id``: an opaque id unique to this dialogue;
    - ``service_code``: the string dialled (``*123*500#``; "" for a menu the network pushed) and
      ``base_code`` without its parameters (``*123#``); ``params``: the dialled parameters
      (``("500",)``) and ``named``: those the route named (``{"mb": "500"}``);
    - ``inputs``: every input of the user so far in this dialogue, in order;
    - ``variables``: the session variables (what input screens saved, options set, items chosen);
    - ``args``: the ``args`` the config gives this call, rendered;
    - ``screen``: the screen that makes the call, if any.
    """

    msisdn: str
    session_id: str
    service_code: str = ""
    base_code: str = ""
    params: tuple[str, ...] = ()
    named: Mapping[str, str] = field(default_factory=_empty)
    inputs: tuple[str, ...] = ()
    variables: Mapping[str, object] = field(default_factory=_empty)
    args: Mapping[str, str] = field(default_factory=_empty)
    screen: str | None = None
    network_initiated: bool = False


Item = Mapping[str, object] | str
Handler = Callable[[UssdContext], Awaitable[str | Screen]]
"""A handler answers with the final text, or a Screen (non-final: the next inputs come back to it)."""
Provider = Callable[[UssdContext], Awaitable[Sequence[Item]]]
"""A provider answers with the items of a dynamic screen: mappings for its item template, or texts."""
Caller = Callable[[Literal["handler", "provider"], str, UssdContext], Awaitable[object]]


class CallFailed(GatewayError):
    """A handler or provider raised, timed out or answered something unusable."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(f"{kind} {name!r} failed: {reason}")
        self.kind = kind
        self.name = name
        self.reason = reason


PagedScreen = MenuScreen | InputScreen | DynamicScreen


@dataclass(slots=True)
class _Frame:
    """A screen that waits for the user: where it is paged to, its items and wrong inputs so far."""

    screen: PagedScreen
    pages: tuple[Page, ...] = ()
    page: int = 0
    items: dict[str, Item] = field(default_factory=dict)
    retries: int = 0


class MenuSession:
    """The state of one dialogue in the menu engine."""

    def __init__(
        self,
        menus: MenuConfig,
        profile: UssdProfile,
        caller: Caller,
        *,
        msisdn: str,
        session_id: str,
        service_code: str = "",
        base_code: str = "",
        params: tuple[str, ...] = (),
        named: Mapping[str, str] = _EMPTY,
        variables: Mapping[str, object] | None = None,
        network_initiated: bool = False,
    ) -> None:
        self.menus = menus
        self.profile = profile
        self._caller = caller
        self.msisdn = msisdn
        self.session_id = session_id
        self.service_code = service_code
        self.base_code = base_code
        self.params = params
        self.named = MappingProxyType(dict(named))
        self.network_initiated = network_initiated
        self.inputs: list[str] = []
        self.variables: dict[str, object] = {
            "msisdn": msisdn,
            "service_code": service_code,
            "params": params,
            "session_id": session_id,
            **named,
            **(variables or {}),
        }
        self.screen_id: str | None = None  # the screen shown last
        self.ended = False
        self.end_reason: str | None = None  # "too_many_attempts" when the user gave up on a screen
        self._entry: str | None = None
        self._frame: _Frame | None = None
        self._stack: list[_Frame] = []
        self._delegate: tuple[str, Mapping[str, str]] | None = None

    # --- the public steps ---

    async def start_menu(self, screen_id: str, shortcuts: Sequence[str] = ()) -> Screen:
        """Enter ``screen_id`` and apply ``shortcuts`` as if the user typed them (``*123*1*2#``)."""
        self._entry = screen_id
        screen = await self._enter(screen_id, push=False)
        for value in shortcuts:
            if screen.final:
                break
            screen = await self.reply(value)
        return screen

    async def start_handler(self, name: str, args: Mapping[str, str] = _EMPTY) -> Screen:
        """A dialogue answered by one handler (a one-shot code, or an app that keeps the dialogue)."""
        return await self._call_handler(name, args)

    async def reply(self, text: str) -> Screen:
        """The next screen for the user's input ``text``."""
        if self.ended:
            raise LocalProtocolError("the USSD menu session has ended")
        value = text.strip()
        self.inputs.append(value)
        if self._delegate is not None:
            name, args = self._delegate
            return await self._call_handler(name, args)
        frame = self._frame
        if frame is None:
            raise LocalProtocolError("the USSD menu session has no screen waiting for input")
        nav = self.menus.settings.navigation
        if frame.screen.navigation:
            if value == nav.more and frame.pages and frame.pages[frame.page].more:
                frame.page += 1
                return self._show(frame)
            if value == nav.back and (frame.page > 0 or self._stack):
                if frame.page > 0:
                    frame.page -= 1
                    return self._show(frame)
                frame = self._frame = self._stack.pop()
                frame.retries = 0
                self.screen_id = frame.screen.id
                return self._show(frame)
            if value == nav.home and (frame.page > 0 or self._stack) and self._entry is not None:
                self._stack.clear()
                self._frame = None
                return await self._enter(self._entry, push=False)
        screen = frame.screen
        if isinstance(screen, InputScreen):
            if screen.validation.check(value):
                self.variables[screen.save_as] = value
                return await self._enter(screen.next)
            return self._wrong(frame, screen.fail_text, screen.max_retries)
        if frame.pages and value in frame.pages[frame.page].keys:
            if isinstance(screen, MenuScreen):
                option = next(o for o in screen.options if o.key == value)
                for name, template in option.set.items():
                    self.variables[name] = render(template, self.variables)
                return await self._enter(option.next)
            self.variables[screen.save_as] = frame.items[value]
            return await self._enter(screen.next)
        return self._wrong(frame, None, self.menus.settings.max_invalid)

    def context(self, args: Mapping[str, str] = _EMPTY) -> UssdContext:
        """The context a handler or provider is called with, ``args`` rendered from the session."""
        return UssdContext(
            msisdn=self.msisdn,
            session_id=self.session_id,
            service_code=self.service_code,
            base_code=self.base_code,
            params=self.params,
            named=self.named,
            inputs=tuple(self.inputs),
            variables=MappingProxyType(dict(self.variables)),
            args=MappingProxyType({k: render(v, self.variables) for k, v in args.items()}),
            screen=self.screen_id,
            network_initiated=self.network_initiated,
        )

    # --- screens ---

    async def _enter(self, screen_id: str, *, push: bool = True) -> Screen:
        screen = self.menus.screens[screen_id]
        if push and self._frame is not None:
            self._stack.append(self._frame)
            del self._stack[:-MAX_STACK]
        self.screen_id = screen_id
        if isinstance(screen, FinalScreen):
            return self._final(render(screen.text, self.variables))
        if isinstance(screen, ActionScreen):
            return await self._call_handler(screen.handler, screen.args)
        if isinstance(screen, InputScreen):
            frame = self._frame = _Frame(screen)
            return self._show(frame)
        if isinstance(screen, MenuScreen):
            options = [(o.key, render(o.label, self.variables)) for o in screen.options]
            frame = _Frame(screen)
        else:
            items = await self._call_provider(screen)
            if not items:
                text = (
                    screen.empty_text if screen.empty_text is not None else self.menus.settings.texts.no_items
                )
                return self._final(render(text, self.variables))
            frame = _Frame(screen)
            options = []
            reserved = self.menus.settings.navigation.inputs
            number = 0
            for item in items:
                number += 1
                while str(number) in reserved:
                    number += 1
                key = str(number)
                frame.items[key] = item
                label = item if isinstance(item, str) else render(screen.item, {**self.variables, **item})
                options.append((key, label))
        nav = self.menus.settings.navigation
        frame.pages = paginate(
            render(screen.text, self.variables),
            options,
            self.profile,
            self.menus.settings,
            back_on_first=screen.navigation and nav.show_back and bool(self._stack),
        )
        self._frame = frame
        return self._show(frame)

    def _show(self, frame: _Frame, prefix: str = "") -> Screen:
        screen = frame.screen
        if isinstance(screen, InputScreen):
            text = render(screen.text, self.variables)
        else:
            text = frame.pages[frame.page].text
        if prefix:
            candidate = f"{prefix}\n{text}"
            if fits(candidate, self.profile):
                text = candidate
        return Screen(text, final=False)

    def _wrong(self, frame: _Frame, fail_text: str | None, limit: int) -> Screen:
        texts = self.menus.settings.texts
        frame.retries += 1
        if frame.retries > limit:
            self.end_reason = "too_many_attempts"
            return self._final(render(fail_text or texts.too_many_attempts, self.variables))
        screen = frame.screen
        error = screen.error if isinstance(screen, InputScreen) and screen.error else texts.invalid_choice
        return self._show(frame, render(error, self.variables))

    def _final(self, text: str) -> Screen:
        self.ended = True
        self._frame = None
        self._stack.clear()
        return Screen(text, final=True)

    # --- calls ---

    async def _call_handler(self, name: str, args: Mapping[str, str]) -> Screen:
        result = await self._caller("handler", name, self.context(args))
        if isinstance(result, str):
            return self._final(result)
        if not isinstance(result, Screen) or not isinstance(result.text, str):
            raise CallFailed("handler", name, f"answered {type(result).__name__}, not a str or a Screen")
        if result.final:
            return self._final(result.text)
        self._delegate = (name, args)
        self._frame = None
        return result

    async def _call_provider(self, screen: DynamicScreen) -> list[Item]:
        result = await self._caller("provider", screen.provider, self.context(screen.args))
        if not isinstance(result, list | tuple):
            raise CallFailed("provider", screen.provider, f"answered {type(result).__name__}, not a list")
        items: list[Item] = []
        for item in result:
            if not isinstance(item, str | Mapping):
                raise CallFailed(
                    "provider", screen.provider, f"item {item!r} is neither a mapping nor a text"
                )
            items.append(item)
        return items
