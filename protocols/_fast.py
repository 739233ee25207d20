"""Fast construction of frozen, slotted dataclasses for decoders on hot paths.

A frozen dataclass ``__init__`` sets each field through ``object.__setattr__``, which for a 20-field
PDU costs ten times a plain slotted ``__init__``. Decoders build millions of PDUs, so they build a
plain twin with the identical slot layout and then switch its ``__class__`` to the frozen class: the
result is an ordinary, immutable instance of the frozen class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_constructor(cls: type[T]) -> Callable[..., T]:
    """Return ``make(*field_values) -> cls`` that skips the frozen ``__init__``.

    Positional arguments only, in field order, all fields given: callers are decoders that know the
    layout. The class must be a frozen dataclass with ``slots=True``.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    twin: Any = dataclasses.make_dataclass(
        f"_{cls.__name__}Builder",
        [(f.name, Any) for f in fields],
        bases=cls.__bases__,
        slots=True,
        eq=False,
        repr=False,
    )
    # both classes derive from the same (field-less) bases and add the same slots in the same order,
    # so CPython allows assigning __class__ between them
    if tuple(twin.__slots__) != tuple(cls.__slots__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} must be a slotted dataclass to build fast")

    def make(*values: Any) -> T:
        obj = twin(*values)
        obj.__class__ = cls
        return obj  # type: ignore[no-any-return]

    make(*(_placeholder(f) for f in fields))  # fail at import time, not on the first PDU
    return make


def _placeholder(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None
