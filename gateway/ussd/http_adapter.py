"""The HTTP callback adapter: a USSD service code delegated to an external web app, in the style of the
common USSD aggregator APIs (PROTOCOLS.md 1.2, the Africa's Talking model).

For each step of the dialogue the gateway POSTs a form to the app's URL:

- ``sessionId``: an id unique to the dialogue;
- ``serviceCode``: the code the app is reached on, without parameters (``*384*1234#``);
- ``phoneNumber``: the subscriber's MSISDN; ``networkCode``: the operator's MCC+MNC, as configured;
- ``text``: the whole input history joined by ``*``: ``""`` on the first hit, then ``"1"``, then
  ``"1*2"`` (parameters dialled with the code come first: ``*384*1234*5#`` starts with ``"5"``).

The app answers ``text/plain``: a body starting ``CON `` continues the dialogue (the rest is the
screen, a USSR request), ``END `` ends it (the final screen, a PSSR response; TS 24.090). Anything
else, an HTTP status other than 2xx, a body that is not UTF-8 or longer than ``MAX_BODY`` octets, a
connection error or no answer within the timeout is an ``HttpAppError``, which the service turns into
its clear failure screen: the subscriber never waits on a broken app. The screen travels in an SMPP
3.4 ``ussd_service_op`` dialogue (5.3.2.44, session in ``its_session_info`` 5.3.2.43).

Duplicate POSTs are possible on the aggregator side (PROTOCOLS.md 1.2), so apps should be idempotent
per ``(sessionId, text)``; this adapter itself posts each step once.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from gateway.ussd.menus import HttpTarget
from gateway.ussd.navigator import Screen, UssdContext
from protocols.errors import GatewayError

__all__ = ["MAX_BODY", "HttpAppError", "HttpUssdApp", "parse_response"]

MAX_BODY = 4096
"""Octets of an answer read at most: a screen is at most 160 octets, anything far longer is broken."""


class HttpAppError(GatewayError):
    """The external app did not answer with a usable CON / END screen."""


def parse_response(body: str) -> Screen:
    """``CON <screen>`` -> a screen that continues the dialogue; ``END <screen>`` -> a final one."""
    for prefix, final in (("CON", False), ("END", True)):
        if body.startswith(prefix):
            rest = body[len(prefix) :]
            if rest and rest[0] not in " \r\n":
                break
            # a CRLF written by an app on a text/plain line protocol is one line break, not a CR (a GSM
            # character of its own) then a blank line on the handset
            text = rest.replace("\r\n", "\n")[1:].rstrip()
            if not final and not text:
                raise HttpAppError("the app answered CON with an empty screen")
            return Screen(text, final=final)
    shown = body[:40] + ("..." if len(body) > 40 else "")
    raise HttpAppError(f"the app answered neither CON nor END: {shown!r}")


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    """The body up to its end, or the first ``MAX_BODY + 1`` octets of a longer one.

    ``StreamReader.read(n)`` returns what has arrived so far, not ``n`` octets: an app that writes its
    answer in pieces (chunked encoding, a flush while it renders) would be cut after the first one.
    """
    raw = bytearray()
    while len(raw) <= MAX_BODY:
        chunk = await response.content.read(MAX_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    return bytes(raw)


class HttpUssdApp:
    """A handler (``gateway.ussd.navigator.Handler``) that forwards every step to ``target.url``.

    ``session`` returns the aiohttp ClientSession to post with (the service owns it)."""

    def __init__(self, target: HttpTarget, session: Callable[[], aiohttp.ClientSession]) -> None:
        self.target = target
        self._session = session

    def form(self, context: UssdContext) -> dict[str, str]:
        """The form fields of one step."""
        return {
            "sessionId": context.session_id,
            "serviceCode": context.base_code,
            "phoneNumber": context.msisdn,
            "networkCode": self.target.network_code,
            "text": "*".join((*context.params, *context.inputs)),
        }

    async def __call__(self, context: UssdContext) -> Screen:
        url = self.target.url
        timeout = aiohttp.ClientTimeout(total=self.target.timeout)
        try:
            async with self._session().post(url, data=self.form(context), timeout=timeout) as response:
                if not 200 <= response.status < 300:
                    raise HttpAppError(f"the app at {url} answered HTTP {response.status}")
                raw = await _read_body(response)
        except TimeoutError:
            raise HttpAppError(f"the app at {url} did not answer within {self.target.timeout} s") from None
        except aiohttp.ClientError as exc:
            raise HttpAppError(f"cannot reach the app at {url}: {exc!r}") from None
        if len(raw) > MAX_BODY:
            raise HttpAppError(f"the app at {url} answered more than {MAX_BODY} octets")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpAppError(f"the app at {url} answered a body that is not UTF-8") from None
        return parse_response(body)
