"""The offer dialog a SIM toolkit push shows (ETSI TS 102 223 sections 6.6.1, 6.6.2, 6.6.8).

A campaign offer (:class:`StkOffer`: the affordable packages, a style, an optional text) becomes one
proactive command for our DSTK applet (``protocols.stk.dstk``; PROTOCOLS.md sections 1.6 and 1.7):

- style ``confirm``: the largest package with one key to buy it. GET INKEY with the yes/no
  qualifier (section 6.6.2, qualifier b3), "Buy 500 MB now, pay later? 4.00 USD"; Yes accepts.
  A handset without yes/no GET INKEY (TERMINAL PROFILE byte 8 b4, section 5.2, or
  ``supports_yes_no: false`` in the key file) gets DISPLAY TEXT (6.6.1) waiting for the user, with
  "Press OK to buy" appended: OK (general result '00') accepts, Back ('11') declines. It is never
  sent with Immediate response, or the OK would be lost.
- style ``menu``: SELECT ITEM (6.6.8) listing every package, item identifier = option index + 1,
  e.g. "100 MB 1.00". A handset whose profile lacks SELECT ITEM gets the ``confirm`` dialog.

Texts use the GSM default alphabet when they can (DCS '04' / unpacked alpha), UCS2 otherwise;
keep them GSM so the offer stays within one SMS (PROTOCOLS.md section 1.5.6: 98 octets of offer
under AES with checksum and ciphering).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from protocols.errors import LocalProtocolError
from protocols.stk.commands import DisplayText, GetInkey, GetInkeyQualifier, SelectItem
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature
from protocols.stk.tlv import AlphaIdentifier, Item, TextString

__all__ = ["DialogStyle", "PackageOption", "StkOffer", "build_offer_command", "option_label"]

_MAX_OFFER_ID = 20  # the DSTK offer id field (protocols.stk.dstk)
_MAX_ITEMS = 255  # item identifiers are one octet, 1..255


class DialogStyle(StrEnum):
    CONFIRM = "confirm"  # the largest package, one key to buy it
    MENU = "menu"  # every package, the subscriber picks one


@dataclass(frozen=True, slots=True)
class PackageOption:
    """One package the subscriber can afford: ``code`` names it to billing; ``price`` is exact (Decimal)."""

    code: str
    volume_mb: int
    price: Decimal | int
    currency: str = ""

    def __post_init__(self) -> None:
        if not self.code:
            raise LocalProtocolError("a package option needs a code")
        if isinstance(self.volume_mb, bool) or not isinstance(self.volume_mb, int) or self.volume_mb <= 0:
            raise LocalProtocolError(f"volume_mb must be a positive integer, got {self.volume_mb!r}")
        if isinstance(self.price, bool) or not isinstance(self.price, Decimal | int) or self.price < 0:
            raise LocalProtocolError(f"price must be a non-negative Decimal or int, got {self.price!r}")


@dataclass(frozen=True, slots=True)
class StkOffer:
    """An offer to push: who gets it, the affordable packages, and how to ask.

    ``style`` None takes the service's default. ``text`` replaces the default prompt (``confirm``)
    or title (``menu``).
    """

    offer_id: str
    msisdn: str
    options: tuple[PackageOption, ...]
    style: DialogStyle | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if not self.offer_id.isascii() or not 1 <= len(self.offer_id) <= _MAX_OFFER_ID:
            raise LocalProtocolError(
                f"offer_id must be 1..{_MAX_OFFER_ID} ASCII characters, got {self.offer_id!r}"
            )
        if not self.msisdn:
            raise LocalProtocolError("an offer needs an MSISDN")
        if not self.options:
            raise LocalProtocolError("an offer needs at least one package option")
        if len(self.options) > _MAX_ITEMS:
            raise LocalProtocolError(f"at most {_MAX_ITEMS} package options, got {len(self.options)}")
        if self.style is not None:
            _style(self.style)

    @property
    def largest(self) -> PackageOption:
        """The package with the most data (the first of them on a tie)."""
        return max(self.options, key=lambda option: option.volume_mb)


def _style(style: DialogStyle | str) -> DialogStyle:
    try:
        return DialogStyle(style)
    except ValueError:
        raise LocalProtocolError(f"dialog style must be confirm or menu, got {style!r}") from None


def _price(option: PackageOption) -> str:
    return f"{option.price:.2f}"


def option_label(option: PackageOption) -> str:
    """The menu item of a package: "100 MB 1.00"."""
    return f"{option.volume_mb} MB {_price(option)}"


def _confirm(offer: StkOffer, supports_yes_no: bool) -> bytes:
    option = offer.largest
    currency = f" {option.currency}" if option.currency else ""
    prompt = offer.text or f"Buy {option.volume_mb} MB now, pay later? {_price(option)}{currency}"
    if supports_yes_no:
        return GetInkey(TextString.of(prompt), GetInkeyQualifier.YES_NO).encode()
    return DisplayText(TextString.of(f"{prompt} Press OK to buy")).encode()


def build_offer_command(
    offer: StkOffer,
    style: DialogStyle,
    *,
    supports_yes_no: bool = True,
    terminal_profile: TerminalProfile | None = None,
) -> bytes:
    """The encoded proactive command ('D0' BER-TLV) that shows ``offer`` in ``style``."""
    style = _style(style)
    if style is DialogStyle.MENU and (
        terminal_profile is None or terminal_profile.supports(TerminalProfileFeature.SELECT_ITEM)
    ):
        items = tuple(Item.of(index + 1, option_label(option)) for index, option in enumerate(offer.options))
        title = AlphaIdentifier.of(offer.text or "Buy data")
        return SelectItem(items, title).encode()
    return _confirm(offer, supports_yes_no)
