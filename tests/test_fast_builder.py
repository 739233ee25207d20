"""The optional C builder of frozen slotted dataclasses (protocols/_slots.c) against the twin class of
protocols/_fast.py that it stands for.

The extension must be built here (CI installs with a C compiler): a missing one fails this module
unless ``TGW_PURE_PYTHON`` is set. Properties:

- for the classes built fast on hot paths (records, commands, PDUs, TLVs), the builder and the twin
  give equal objects of the frozen class itself: same repr, same hash, still frozen, ``replace`` works;
- a builder takes exactly one positional argument per field, nothing else;
- a class or name it cannot fill safely (a ``__dict__``, a property, a read-only or repeated member, a
  built-in type) is refused when the builder is made, never when it runs;
- reference counts and the cycle collector see built objects as they see ordinary ones.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign_core.model import OfferOption, Payment, PushStk, Record, RecordKind, SendSms
from protocols import _fast
from protocols.smpp.pdu import DeliverSm, SubmitSm

try:
    from protocols import _slots as C
except ImportError:
    C = None  # type: ignore[assignment]

PURE_FORCED = os.environ.get("TGW_PURE_PYTHON", "") not in ("", "0")
needs_c = pytest.mark.skipif(C is None and PURE_FORCED, reason="TGW_PURE_PYTHON set and no C extension")


def names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def twin_of(cls: type) -> Any:
    """The pure-Python builder, whatever ``_fast`` chose."""
    saved = _fast._builder
    _fast._builder = None
    try:
        return _fast.fast_constructor(cls)
    finally:
        _fast._builder = saved


def test_the_extension_is_built_unless_pure_python_is_asked_for() -> None:
    if PURE_FORCED:
        assert _fast._builder is None
    else:
        assert C is not None, "protocols/_slots.c was not built (a C compiler and Python headers are needed)"
        assert _fast._builder is C.builder


@pytest.mark.parametrize("value", ["1", "yes"])
def test_pure_python_ignores_the_extension(value: str) -> None:
    assert _fast._load_builder({"TGW_PURE_PYTHON": value}) is None


@needs_c
@pytest.mark.parametrize("environ", [{}, {"TGW_PURE_PYTHON": ""}, {"TGW_PURE_PYTHON": "0"}])
def test_otherwise_the_extension_is_used(environ: dict[str, str]) -> None:
    assert _fast._load_builder(environ) is C.builder


text = st.text(max_size=12)
optional_text = st.none() | text
details = st.dictionaries(text, st.integers() | text | st.none(), max_size=4)


@needs_c
@given(
    kind=st.sampled_from(RecordKind),
    at=st.floats(allow_nan=False),
    msisdn=text,
    campaign_id=optional_text,
    variant=optional_text,
    offer_id=optional_text,
    detail=details,
)
def test_a_record_built_in_c_is_the_twin_and_the_dataclass(  # noqa: PLR0917 - one per field
    kind: RecordKind,
    at: float,
    msisdn: str,
    campaign_id: str | None,
    variant: str | None,
    offer_id: str | None,
    detail: dict[str, object],
) -> None:
    values = (kind, at, msisdn, campaign_id, variant, offer_id, detail)
    fast = C.builder(Record, names(Record))(*values)
    twin = twin_of(Record)(*values)
    plain = Record(*values)
    assert type(fast) is Record
    assert fast == twin == plain
    assert repr(fast) == repr(plain)
    assert fast.detail is detail  # stored, not copied
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.at = 0.0  # type: ignore[misc]
    assert dataclasses.replace(fast, at=1.0) == dataclasses.replace(plain, at=1.0)


@needs_c
@given(
    command_id=text,
    msisdn=text,
    text_=text,
    offer_id=optional_text,
    promotional=st.booleans(),
    volume=st.integers(1, 10_000),
)
def test_commands_built_in_c_are_the_dataclasses(  # noqa: PLR0917 - one per field
    command_id: str, msisdn: str, text_: str, offer_id: str | None, promotional: bool, volume: int
) -> None:
    option = OfferOption("data", volume, Decimal("50.00"), Payment.CREDIT, "*123*1#")
    sms = (command_id, msisdn, "campaign", text_, offer_id, promotional)
    push = (command_id, "offer", msisdn, "campaign", "confirm", (option,), text_)
    for cls, values in ((SendSms, sms), (PushStk, push)):
        fast = C.builder(cls, names(cls))(*values)
        assert type(fast) is cls
        assert fast == cls(*values) == twin_of(cls)(*values)
        assert hash(fast) == hash(cls(*values))


@needs_c
@given(
    sequence_number=st.integers(1, 0x7FFFFFFF),
    source=st.text(alphabet="0123456789", max_size=20),
    message=st.binary(max_size=140),
)
def test_pdus_built_in_c_are_the_dataclasses(sequence_number: int, source: str, message: bytes) -> None:
    for cls in (SubmitSm, DeliverSm):
        plain = cls(sequence_number=sequence_number, source_addr=source, short_message=message)
        values = tuple(getattr(plain, name) for name in names(cls))
        fast = C.builder(cls, names(cls))(*values)
        assert type(fast) is cls
        assert fast == plain and repr(fast) == repr(plain)


@needs_c
def test_a_builder_takes_one_positional_argument_per_field() -> None:
    build = C.builder(SendSms, names(SendSms))
    with pytest.raises(TypeError, match="exactly 6 positional arguments"):
        build("c", "1", "camp", "text", None)
    with pytest.raises(TypeError, match="exactly 6 positional arguments"):
        build("c", "1", "camp", "text", None, True, "extra")
    with pytest.raises(TypeError):
        build("c", "1", "camp", "text", None, promotional=True)
    with pytest.raises(TypeError):
        build(*("c", "1", "camp", "text", None), **{"promotional": True})
    assert "SendSms" in repr(build)


@dataclasses.dataclass(frozen=True, slots=True)
class Base:
    first: object


@dataclasses.dataclass(frozen=True, slots=True)
class Derived(Base):
    second: object


class WithDict:
    pass


class WithProperty:
    __slots__ = ("value",)

    @property
    def shown(self) -> int:
        return 1


@needs_c
def test_slots_of_a_base_class_are_filled_too() -> None:
    built = C.builder(Derived, ("first", "second"))(1, 2)
    assert built == Derived(1, 2)


@needs_c
@pytest.mark.parametrize(
    ("cls", "slots", "message"),
    [
        (WithDict, ("value",), "not a plain slotted class"),
        (WithProperty, ("shown",), "is not a slot"),
        (WithProperty, ("missing",), "is not a slot"),
        (WithProperty, ("value", "value"), "named twice"),
        (int, (), "not a plain slotted class"),  # not a heap type
        (type(sys.flags), ("n_fields",), "not a plain slotted class"),
    ],
)
def test_what_it_cannot_fill_safely_is_refused_up_front(
    cls: type, slots: tuple[str, ...], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        C.builder(cls, slots)


@needs_c
def test_bad_arguments_to_builder_are_type_errors() -> None:
    with pytest.raises(TypeError):
        C.builder(Base)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        C.builder(Base, ["first"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="strings"):
        C.builder(Base, (1,))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        C.Builder()


@needs_c
def test_references_are_counted_and_cycles_collected() -> None:
    build = C.builder(Derived, ("first", "second"))
    value = object()
    before = sys.getrefcount(value)
    built = [build(value, value) for _ in range(100)]
    assert sys.getrefcount(value) == before + 200
    del built
    assert sys.getrefcount(value) == before

    holder: list[object] = []
    cyclic = build(holder, None)
    holder.append(cyclic)  # cyclic -> holder -> cyclic
    assert gc.is_tracked(cyclic)
    gc.collect()
    del holder, cyclic
    assert gc.collect() >= 2  # the cycle (the instance and the list) was found and freed
