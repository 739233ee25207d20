"""The C accelerator's ``Maker`` (protocols/diameter/_speedups.c) against its reference, the class itself:
``codec.record_maker(cls)`` makes what ``cls(...)`` makes, through the slots.

- for every class the parser, the decoder, the peer engine and the Diameter ingest build with a maker
  (and a few made up here), over hypothesis arguments: the same instance (type and every field, so
  equal and hashing alike) or, for arguments the class refuses, a TypeError too;
- the classes ``record_maker`` must refuse (an ``__init__`` that does more than set the slots) and the
  ones ``Maker`` itself refuses (no slot to set);
- a maker runs no ``__init__`` (the fast path is taken: tests/diameter/test_speedups.py refuses every
  maker class's ``__init__`` while whole requests are parsed), and leaks nothing there either.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_speedups import MAKERS, outcome, shape

from campaign_core.usage import UsageEvent
from protocols.diameter import codec
from protocols.diameter.codec import Avp, Message

try:
    from protocols.diameter import _speedups as C
except ImportError:
    C = None  # type: ignore[assignment]

PURE_FORCED = os.environ.get("TGW_PURE_PYTHON", "") not in ("", "0")
needs_c = pytest.mark.skipif(C is None and PURE_FORCED, reason="TGW_PURE_PYTHON set and no C extension")


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    """Positional-or-keyword fields, some with defaults."""

    a: Any
    b: Any = 2
    c: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class Mixed:
    """Positional fields, then keyword-only ones (and a ClassVar, which is no field)."""

    KIND: ClassVar[str] = "mixed"
    a: Any
    b: Any = 0
    _: dataclasses.KW_ONLY
    c: Any
    d: Any = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Base:
    x: Any = 1


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Derived(Base):
    """Fields of a slotted base (their descriptors live there) and its own."""

    y: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Empty:
    pass


CLASSES: list[type] = [
    *dict.fromkeys(MAKERS.values()),
    Message,
    UsageEvent,
    Plain,
    Mixed,
    Derived,
    Empty,
]
VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.tuples(st.integers()),
    st.just(()),
    st.floats(allow_nan=False),
)


def make(cls: type, c_on: bool) -> Any:
    return codec._record_maker(cls, C.Maker if c_on else None)


@st.composite
def calls(draw: st.DrawFn, cls: type) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments for ``cls``: mostly what __init__ takes (defaults left out now and then, positional
    where allowed), sometimes not (a field missing, an unknown name, one too many positional, a field
    given twice)."""
    fields = dataclasses.fields(cls)
    positional = [f.name for f in fields if not f.kw_only]
    kwargs = {f.name: draw(VALUES) for f in fields if f.default is dataclasses.MISSING or draw(st.booleans())}
    args: list[Any] = []
    for name in positional:
        if name in kwargs and draw(st.booleans()):
            args.append(kwargs.pop(name))
        else:
            break
    how = draw(st.sampled_from(["fine"] * 6 + ["missing", "unknown", "extra", "twice"]))
    if how == "missing" and kwargs:
        del kwargs[draw(st.sampled_from(sorted(kwargs)))]
    elif how == "unknown":
        kwargs[draw(st.sampled_from(["zz", "KIND", "_", "__init__"]))] = 1
    elif how == "extra":
        args += [None] * (len(positional) - len(args) + 1)
    elif how == "twice" and args:
        kwargs[positional[0]] = 7
    return tuple(args), kwargs


@needs_c
@settings(max_examples=40, deadline=None)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_a_maker_makes_what_its_class_makes(cls: type, data: st.DataObject) -> None:
    args, kwargs = data.draw(calls(cls))
    fast = outcome(lambda: make(cls, c_on=True)(*args, **kwargs))
    slow = outcome(lambda: cls(*args, **kwargs))
    if slow[0] == "raised":
        assert fast[:2] == ("raised", TypeError), (fast, slow)
        assert slow[1] is TypeError
    else:
        assert fast == slow
        made = make(cls, c_on=True)(*args, **kwargs)
        assert type(made) is cls and made == cls(*args, **kwargs)
        for field in dataclasses.fields(cls)[:1]:  # frozen as ever
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(made, field.name, 1)
        try:
            expected: Any = ("hash", hash(cls(*args, **kwargs)))
        except TypeError:
            expected = "unhashable"
        try:
            assert expected == ("hash", hash(made))
        except TypeError:
            assert expected == "unhashable"


@needs_c
def test_maker_refuses_what_init_refuses() -> None:
    maker = make(Mixed, c_on=True)
    assert maker(1, c=3) == Mixed(1, c=3) and maker(1, 2, c=3, d=4) == Mixed(1, 2, c=3, d=4)
    for args, kwargs, words in [
        ((), {"c": 1}, "missing required argument 'a'"),
        ((1,), {}, "missing required argument 'c'"),
        ((1, 2, 3), {"c": 1}, "takes 2 positional arguments but 3 were given"),
        ((1,), {"a": 1, "c": 1}, "multiple values for argument 'a'"),
        ((1,), {"c": 1, "e": 1}, "unexpected keyword argument 'e'"),
        ((1,), {"c": 1, "KIND": 1}, "unexpected keyword argument 'KIND'"),
    ]:
        with pytest.raises(TypeError, match=words):
            maker(*args, **kwargs)
        with pytest.raises(TypeError):
            Mixed(*args, **kwargs)
    # keyword names that are equal strings but other objects than the field names
    name = "".join(["c", ""])
    assert maker(1, **{name: 5}) == Mixed(1, c=5)
    assert maker.cls is Mixed and maker.names == ("a", "b", "c", "d")
    assert repr(maker) == f"Maker({Mixed!r})"
    assert make(Empty, c_on=True)() == Empty()


def test_record_maker_is_the_class_without_the_extension() -> None:
    for cls in CLASSES:
        assert make(cls, c_on=False) is cls


@dataclasses.dataclass(frozen=True, slots=True)
class PostInit:
    a: int

    def __post_init__(self) -> None:
        pass


@dataclasses.dataclass(slots=True)
class NotFrozen:
    a: int


@dataclasses.dataclass(frozen=True)
class NoSlots:
    a: int


@dataclasses.dataclass(frozen=True, slots=True)
class Factory:
    a: tuple[int, ...] = dataclasses.field(default_factory=tuple)


@dataclasses.dataclass(frozen=True, slots=True)
class NotInit:
    a: int = dataclasses.field(init=False, default=1)


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class OwnInit:
    a: int

    def __init__(self) -> None:
        object.__setattr__(self, "a", 1)


@dataclasses.dataclass(frozen=True, slots=True)
class OwnNew:
    a: int

    def __new__(cls, *args: Any, **kwargs: Any) -> OwnNew:
        return super().__new__(cls)


@pytest.mark.parametrize(
    "cls", [PostInit, NotFrozen, NoSlots, Factory, NotInit, OwnInit, OwnNew, Avp, int, "Message"]
)
def test_record_maker_refuses_classes_whose_init_does_more(cls: Any) -> None:
    for c_on in (False, True) if C is not None else (False,):
        with pytest.raises(TypeError):
            make(cls, c_on)


class Slotted:
    __slots__ = ("a", "b")


class ReadOnly:
    __slots__ = ()
    a = property(lambda self: 1)


@needs_c
def test_maker_refuses_what_has_no_writable_slot() -> None:
    assert C is not None
    assert C.Maker(Slotted, ("a", "b"), 2, {})(1, 2).b == 2  # any slotted class: Maker checks slots only
    for cls, names in [
        (Slotted, ("a", "c")),  # no such slot
        (ReadOnly, ("a",)),  # a property, not a slot
        (Message, ("flags",)),
        (int, ("real",)),  # a getset of a C type
        (dict, ()),  # not made by object.__new__
        (OwnNew, ("a",)),
    ]:
        with pytest.raises(TypeError):
            C.Maker(cls, names, 0, {})
    with pytest.raises(TypeError):
        C.Maker(Slotted, (1,), 0, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        C.Maker("Slotted", ("a",), 0, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positional"):
        C.Maker(Slotted, ("a",), 2, {})
    with pytest.raises(ValueError, match="too many fields"):
        C.Maker(Slotted, ("a",) * 33, 0, {})


@needs_c
def test_makers_keep_their_class_and_defaults_alive_and_leak_nothing() -> None:
    assert C is not None
    default = object()

    @dataclasses.dataclass(frozen=True, slots=True)
    class Local:
        a: Any
        b: Any = default

    maker = make(Local, c_on=True)
    made = maker(1)
    assert made.b is default
    before = sys.getrefcount(default), sys.getrefcount(Local)
    for _ in range(1000):
        maker(1)
        maker(a=2, b=3)
        with pytest.raises(TypeError):
            maker()
    assert (sys.getrefcount(default), sys.getrefcount(Local)) == before
    del Local, made
    gc.collect()
    assert maker(5).a == 5  # the maker holds its class
    assert type(maker(5)).__name__ == "Local"
    assert shape(maker(5)) == shape(maker(a=5))
