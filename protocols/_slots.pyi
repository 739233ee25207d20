"""Types of the optional C accelerator ``protocols._slots`` (source: ``_slots.c``)."""

from collections.abc import Callable
from typing import Any, final

@final
class Builder:
    """Builds one class from one positional argument per slot name (made by ``builder``)."""

    def __call__(self, *values: Any) -> Any: ...

def builder(cls: type, names: tuple[str, ...], /) -> Callable[..., Any]:
    """A callable that allocates ``cls`` and stores its arguments into the slots ``names``, in order,
    without running ``__init__``; TypeError if a name is not a writable object slot of ``cls``."""
