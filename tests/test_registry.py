"""protocols/registry.py: registries keep unknown values, in one place for every protocol."""

from __future__ import annotations

import pytest

from protocols.registry import KeepUnknownIntEnum, WideKeepUnknownIntEnum


class Narrow(KeepUnknownIntEnum):
    KNOWN = 1


class Wide(WideKeepUnknownIntEnum):
    KNOWN = 1


def test_known_values_are_members() -> None:
    assert Narrow(1) is Narrow.KNOWN and Wide(1) is Wide.KNOWN


def test_unknown_values_are_kept_with_a_name_of_the_field_width() -> None:
    assert Narrow(0x3D) == 0x3D and Narrow(0x3D).name == "UNKNOWN_0x3D"
    assert Wide(0x400) == 0x400 and Wide(0x400).name == "UNKNOWN_0x00000400"
    assert isinstance(Narrow(7), Narrow)


@pytest.mark.parametrize("bad", ["1", 2.5, False, None])  # False == 0: no member, and a bool is no value
def test_non_integers_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        Narrow(bad)
