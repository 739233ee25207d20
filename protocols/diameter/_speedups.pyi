"""Types of the optional C accelerator ``protocols.diameter._speedups`` (source: ``_speedups.c``).

Every function returns None when its input is not the plain valid case; protocols/diameter/codec.py
and credit_control.py then run their pure-Python code, which is the reference and raises the exact
error. ``Found`` and ``Reader`` are credit_control's ``_PyFound`` and typed readers in C; a Reader
calls its Python ``fallback`` for anything but the common case.
"""

from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from protocols.diameter.codec import Avp, RawAvp

_T = TypeVar("_T")
_Key = int | tuple[int, int]

def scan_avps(data: bytes, offset: int, end: int, /) -> list[RawAvp] | None:
    """``codec._scan_avps``: the AVPs of ``data[offset:end]`` as RawAvp tuples, or None."""

def decode_avps(data: bytes, offset: int, end: int, avp_class: type[Avp], /) -> tuple[Avp, ...] | None:
    """``codec._decode_avps``: the AVPs of ``data[offset:end]`` as ``avp_class`` instances, or None."""

def encode_avps(avps: tuple[Avp, ...] | list[Avp], avp_class: type[Avp], /) -> bytes | None:
    """``codec.encode_avps`` of exact ``avp_class`` instances with plain fields, or None."""

def encode_parts(parts: list[Avp | bytes], avp_class: type[Avp], /) -> bytes | None:
    """``encode_avps`` where exact bytes items are octets encoded already, copied as they are."""

def select(
    avps: tuple[Avp, ...] | list[Avp], avp_class: type[Avp], codes: tuple[int, ...], /
) -> list[Avp] | None:
    """The AVPs without vendor_id whose code is in ``codes``, in order, or None."""

def members(
    data: bytes,
    by_key: Mapping[_Key, tuple[str, int | None, int | None]],
    m_rules: Mapping[_Key, int | None],
    strict: bool,
    required: tuple[str, ...] | frozenset[str],
    /,
) -> dict[str, list[RawAvp]] | None:
    """``credit_control._Parser.members``' one pass over a Grouped AVP's data: the members by grammar
    name when every check passes and the ``required`` names occur, else None."""

def collect(
    avps: tuple[Avp, ...],
    avp_class: type[Avp],
    by_key: Mapping[_Key, tuple[str, int | None, int | None]],
    m_rules: Mapping[_Key, int | None],
    strict: bool,
    required: tuple[str, ...] | frozenset[str],
    /,
) -> dict[str, list[RawAvp]] | None:
    """``credit_control._Parser.collect`` of a message's AVPs when it would raise nothing, else None."""

class Found:
    """``credit_control._PyFound`` in C: a dict name -> RawAvps with typed accessors."""

    def __init__(self, avps: dict[str, list[RawAvp]]) -> None: ...
    @property
    def _avps(self) -> dict[str, list[RawAvp]]: ...
    def all(self, name: str, /) -> list[RawAvp]: ...
    def one(self, name: str, decoder: Callable[[RawAvp], _T], /) -> _T: ...
    def optional(self, name: str, decoder: Callable[[RawAvp], _T], /) -> _T | None: ...
    def many(self, name: str, decoder: Callable[[RawAvp], _T], /) -> tuple[_T, ...]: ...

class Reader(Generic[_T]):
    """A typed reader of a RawAvp's data (kind u32, u64, i32, utf8 or ascii): its common case in C,
    ``fallback(raw)`` for anything else; with ``members`` (integer kinds), ``members[value]``, and the
    fallback for a value it lacks."""

    def __init__(
        self, kind: str, fallback: Callable[[RawAvp], _T], members: Mapping[int, _T] | None = None
    ) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def fallback(self) -> Callable[[RawAvp], _T]: ...
    @property
    def members(self) -> Mapping[int, _T] | None: ...
    def __call__(self, item: RawAvp, /) -> _T: ...

class Maker(Generic[_T]):
    """Makes instances of the slotted class ``cls`` as its dataclass ``__init__`` does, through the
    slots (``codec.record_maker``): ``names`` in ``__init__``'s order, the first ``positional`` of them
    positional-or-keyword, ``defaults`` for those that may be left out."""

    def __init__(
        self, cls: type[_T], names: tuple[str, ...], positional: int, defaults: dict[str, object]
    ) -> None: ...
    @property
    def cls(self) -> type[_T]: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    def __call__(self, *args: object, **kwargs: object) -> _T: ...
