"""Types of the optional C accelerator ``campaign_core._journey`` (source: ``_journey.c``)."""

from typing import Any, final

@final
class Dispatch:
    """``Engine.handle`` of ``engine`` as a callable ``(event, now) -> commands``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, /) -> list[Any]: ...

@final
class TriggerPath:
    """``Engine._trigger`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class TickPath:
    """``Engine._on_tick`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class CreditPath:
    """``Engine._credit_scored`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class DeliveryPath:
    """``Engine._delivered`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class ResponsePath:
    """``Engine._response`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class ActivationPath:
    """``Engine._activation`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

@final
class ProfilePath:
    """``Engine._on_profile`` of ``engine`` as a callable ``(event, now, out)``."""

    def __init__(self, engine: Any, /) -> None: ...
    def __call__(self, event: Any, now: float, out: list[Any], /) -> None: ...

def blake2b(data: bytes, digest_size: int, /) -> bytes:
    """BLAKE2b of ``data`` (unkeyed, ``digest_size`` 1..64 octets), as ``hashlib.blake2b`` gives it."""

def configure(namespace: dict[str, Any], /) -> None:
    """Take the engine module's record kinds, offer states, builders and classes (once, at import)."""

def track_open_offers(engine: Any, subscriber: Any, /) -> None:
    """Track ``subscriber``'s open offers again for the collector when its profile is tracked (the C
    paths untrack an offer only while its subscriber's profile cannot refer back to it)."""
