"""Registries: ``IntEnum``s that keep unknown raw values (DESIGN.md, "Style").

A value a spec (or a vendor) defines but we do not name must survive a decode and re-encode, so
``Registry(value)`` of an unregistered value yields a pseudo-member named ``UNKNOWN_0x..`` instead
of raising. ``_hex_digits_`` sets how wide that name prints the value (the field's octets x 2).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = ["KeepUnknownIntEnum", "WideKeepUnknownIntEnum"]


class KeepUnknownIntEnum(IntEnum):
    """Unknown values become pseudo-members ``UNKNOWN_0xNN`` (two hex digits: one-octet fields)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_0x{value:0{cls._unknown_width()}X}"
        member._value_ = value
        return member

    @classmethod
    def _unknown_width(cls) -> int:
        return 2


class WideKeepUnknownIntEnum(KeepUnknownIntEnum):
    """The same for four-octet fields (SMPP command ids and statuses): ``UNKNOWN_0x00000400``."""

    @classmethod
    def _unknown_width(cls) -> int:
        return 8
