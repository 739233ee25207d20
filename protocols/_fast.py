"""Fast construction of frozen, slotted dataclasses for decoders on hot paths.

A frozen dataclass ``__init__`` sets each field through ``object.__setattr__``, which for a 20-field
PDU costs ten times a plain slotted ``__init__``. Decoders build millions of PDUs, so they build a
plain twin with the identical slot layout and then switch its ``__class__`` to the frozen class: the
result is an ordinary, immutable instance of the frozen class.

The optional C accelerator ``protocols._slots`` (``_slots.c``) builds the same instance without the twin:
it allocates the frozen class and fills its slots directly (0.1 us instead of 0.8 us for seven fields).
``TGW_PURE_PYTHON=1`` ignores it, as it does the other accelerators.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def pure_python_asked(environ: Mapping[str, str]) -> bool:
    """Whether ``TGW_PURE_PYTHON`` asks for the pure-Python code: set to anything but "" or "0". Every
    optional C accelerator of the project is loaded only when this is false."""
    return environ.get("TGW_PURE_PYTHON", "") not in ("", "0")


def _load_builder(environ: Mapping[str, str]) -> Callable[[type, tuple[str, ...]], Callable[..., Any]] | None:
    """``protocols._slots.builder``, or None when it is not built or ``TGW_PURE_PYTHON`` is set."""
    if pure_python_asked(environ):
        return None
    try:
        from protocols import _slots  # noqa: PLC0415 (here, so that tests can replay the choice)
    except ImportError:
        return None
    return _slots.builder


_builder = _load_builder(os.environ)


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

    built: Callable[..., T] = make
    if _builder is not None:
        built = _builder(cls, tuple(f.name for f in fields))
    built(*(_placeholder(f) for f in fields))  # fail at import time, not on the first PDU
    return built


def _placeholder(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None
