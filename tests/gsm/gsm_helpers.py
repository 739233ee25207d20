"""Shared by the tests of protocols.gsm: the vector files of tests/vectors/gsm and their JSON forms.

Imported as ``from gsm_helpers import ...`` (pytest's prepend import mode puts tests/gsm on
sys.path for the modules in it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from protocols.gsm import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Address,
    Concat8,
    Concat16,
    InformationElement,
    Ports8,
    Ports16,
    RawIe,
    RelativeValidity,
    SimToolkitSecurity,
    SimToolkitSecurity71,
    Timestamp,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "gsm"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


_IE_TYPES: dict[str, Any] = {
    "Concat8": Concat8,
    "Concat16": Concat16,
    "Ports8": Ports8,
    "Ports16": Ports16,
    "SimToolkitSecurity": SimToolkitSecurity,
    "SimToolkitSecurity71": SimToolkitSecurity71,
}


def ie_from_json(item: dict[str, Any]) -> InformationElement:
    fields = {k: v for k, v in item.items() if k != "type"}
    if item["type"] == "RawIe":
        return RawIe(fields["iei"], bytes.fromhex(fields["value_hex"]))
    ie: InformationElement = _IE_TYPES[item["type"]](**fields)
    return ie


def tpdu_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON fields of a TPDU vector -> constructor keyword arguments."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "tp_ud_hex":
            out["tp_ud"] = bytes.fromhex(value)
        elif key in ("tp_oa", "tp_da"):
            out[key] = Address(**value)
        elif key == "tp_scts":
            out[key] = Timestamp(**value)
        elif key == "tp_vp":
            out[key] = None if value is None else RelativeValidity(value["relative"])
        else:
            out[key] = value
    return out


# --- hypothesis strategies ---------------------------------------------------------------------

GSM7_CHARS = "".join(ch for ch in GSM7_BASIC if ch != "\x1b") + "".join(GSM7_EXTENSION.values())
gsm7_text = st.text(alphabet=GSM7_CHARS, max_size=400)
# any str without unpaired surrogates (hypothesis excludes category Cs by default)
unicode_text = st.text(max_size=300)
