"""The texts of a journey step: ``str.format``-style templates with a fixed set of fields.

Fields of a step's ``text`` (``TEXT_FIELDS``): ``{options}``, the option lines, the largest option's
``{volume_mb}``, ``{price}``, ``{currency}``, ``{ussd_code}``, ``{payment}``, and ``{days_left}`` (the
trigger's days to the end date, for package-ending and trial-ending reminders; empty otherwise). Fields of an option line
(``OPTION_FIELDS``): the same for that option. Only plain ``{name}`` fields are allowed (no attribute,
index or format spec), so a template cannot reach into objects, and every mistake is found when the
campaign is loaded, not when the first subscriber is contacted. Prices are shown with two decimals.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence

from campaign_core.model import OfferOption

__all__ = ["OPTION_FIELDS", "TEXT_FIELDS", "check_template", "option_fields", "render_step_text"]

OPTION_FIELDS = frozenset({"volume_mb", "price", "currency", "ussd_code", "payment"})
TEXT_FIELDS = OPTION_FIELDS | {"options", "days_left"}

_FORMATTER = string.Formatter()


def check_template(template: str, allowed: Iterable[str]) -> None:
    """ValueError naming the first field that is not allowed (or a malformed brace)."""
    names = frozenset(allowed)
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or name not in names:
            raise ValueError(
                f"template {template!r}: unknown field {{{name}}} (allowed: {', '.join(sorted(names))})"
            )


def option_fields(option: OfferOption, currency: str) -> dict[str, str]:
    return {
        "volume_mb": str(option.volume_mb),
        "price": f"{option.price:.2f}",
        "currency": currency,
        "ussd_code": option.ussd_code,
        "payment": option.payment.value,
    }


def render_step_text(
    template: str,
    options: Sequence[OfferOption],
    currency: str,
    option_format: str,
    option_separator: str,
    *,
    days_left: str = "",
) -> str:
    """The text of a step offering ``options`` (largest first is the caller's order; may be empty)."""
    fields: Mapping[str, str]
    if options:
        largest = max(options, key=lambda option: option.volume_mb)
        fields = option_fields(largest, currency)
        lines = option_separator.join(option_format.format_map(option_fields(o, currency)) for o in options)
    else:
        fields = dict.fromkeys(OPTION_FIELDS, "")
        lines = ""
    return template.format_map({**fields, "options": lines, "days_left": days_left})
