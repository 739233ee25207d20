"""The SIM key store: which keys, TAR and security level (ETSI TS 102 225 section 5.1) each card gets.

The gateway secures a push with the keys of the subscriber's card (KIc for ciphering, KID for the
cryptographic checksum, TS 102 225 sections 5.1.2 / 5.1.3) and checks the card's answer with the
same keys (the response packet, section 5.2). They come from a YAML file
(``configs/sim_keys.example.yaml`` documents every field)::

    minimum_security: {integrity: cc, ciphering: true, counter: higher}   # the floor for every card
    defaults: {tar: BFFF01, spi: {...}}                                    # merged into every card
    subscribers:
      - msisdn: "254700000001"
        iccid: "8925400000000000018"
        spi: {integrity: cc, ciphering: true, counter: higher, por: none,
              por_integrity: cc, por_ciphering: true, por_via_sms_submit: true}
        kic: {algorithm: aes, key: 000102030405060708090A0B0C0D0E0F, kvn: 1}
        kid: {algorithm: aes, key: 101112131415161718191A1B1C1D1E1F, kvn: 1}

Everything is checked when the file loads: hex, key lengths per algorithm (DES 8 octets, two-key
3DES 16, three-key 3DES 24, AES 16/24/32; a 3DES key whose parts repeat is refused, it is single
DES), key versions, TAR, MSISDN and ICCID syntax, duplicates, unknown fields, and that the SPI
(section 5.1.1) meets the minimum security level (an SPI1-coded octet, TS 102 226) both ways: the
answer comes back in a response packet secured as SPI2 says, and an answer that could be forged
could buy a package. A mistake raises :class:`ConfigError` with the file, the line (from the YAML
node marks) and the reason; the reason never quotes a key.

Key material is held in :class:`SecretKey`, whose ``repr`` shows only the length, so a card
(:class:`SimCard`) can be logged safely. ``SimCard.key_set()`` builds the ``protocols.stk.ota.KeySet``
for one operation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
import yaml.reader
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocols.errors import ConfigError
from protocols.stk.dstk import DSTK_TAR
from protocols.stk.ota import (
    CcAlgorithm,
    CipherAlgorithm,
    CounterMode,
    Integrity,
    KeySet,
    Kic,
    Kid,
    PorMode,
    RcAlgorithm,
    Spi,
)
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature

__all__ = ["DEFAULT_MINIMUM_SECURITY", "KeyStore", "SecretKey", "SimCard", "normalize_msisdn"]

log = logging.getLogger(__name__)

DEFAULT_MINIMUM_SECURITY = 0x02
"""Cryptographic checksum required (SPI1 b2b1 = 10) unless the file says otherwise."""

_INTEGRITY = {"none": Integrity.NONE, "rc": Integrity.RC, "cc": Integrity.CC}
_COUNTER = {
    "none": CounterMode.NO_COUNTER,
    "no_check": CounterMode.AVAILABLE_NO_CHECK,
    "higher": CounterMode.HIGHER,
    "exactly_one_higher": CounterMode.EXACTLY_ONE_HIGHER,
}
_POR = {"none": PorMode.NONE, "always": PorMode.ALWAYS, "on_error": PorMode.ON_ERROR}
# algorithm name -> (KIc algorithm, KID algorithm for a CC, allowed key lengths)
_BLOCK_ALGORITHMS: dict[str, tuple[CipherAlgorithm, CcAlgorithm, tuple[int, ...]]] = {
    "des": (CipherAlgorithm.DES_CBC, CcAlgorithm.DES_CBC, (8,)),
    "3des2": (CipherAlgorithm.TDES_2KEY, CcAlgorithm.TDES_2KEY, (16,)),
    "3des3": (CipherAlgorithm.TDES_3KEY, CcAlgorithm.TDES_3KEY, (24,)),
    "aes": (CipherAlgorithm.AES_CBC, CcAlgorithm.AES_CMAC, (16, 24, 32)),
}
_RC_ALGORITHMS = {"crc16": RcAlgorithm.CRC16, "crc32": RcAlgorithm.CRC32}

_TOP_FIELDS = frozenset({"version", "minimum_security", "defaults", "subscribers"})
_CARD_FIELDS = frozenset(
    {
        "msisdn",
        "iccid",
        "tar",
        "spi",
        "kic",
        "kid",
        "minimum_security",
        "supports_yes_no",
        "terminal_profile",
        "min_counter",
    }
)
_SPI_FIELDS = frozenset(
    {"integrity", "ciphering", "counter", "por", "por_integrity", "por_ciphering", "por_via_sms_submit"}
)
_MSL_FIELDS = frozenset({"integrity", "ciphering", "counter"})
_KEY_FIELDS = frozenset({"algorithm", "key", "kvn"})
_MERGED = frozenset({"spi", "kic", "kid"})  # mappings merged field by field with the defaults

_MSISDN = re.compile(r"\+?[0-9]{1,15}", re.ASCII)
_ICCID = re.compile(r"[0-9]{18,20}", re.ASCII)
_HEX_SEPARATORS = re.compile(r"[\s:]", re.ASCII)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+", re.ASCII)

_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"


def normalize_msisdn(msisdn: str) -> str:
    """An MSISDN as the key store keys it: without spaces and without a leading "+"."""
    return msisdn.strip().removeprefix("+")


@dataclass(frozen=True, slots=True)
class SecretKey:
    """Key material that never shows in a repr, a str or a log line (only its length does)."""

    _value: bytes

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"SecretKey(<{len(self._value)} octets>)"

    __str__ = __repr__


_NO_KEY = SecretKey(b"")


@dataclass(frozen=True, slots=True)
class SimCard:
    """One subscriber's card: how to reach it (MSISDN), which applet (TAR), how to secure it.

    ``minimum_security`` is the SPI1-coded floor the SPI was checked against. ``supports_yes_no``
    tells whether the handset can show a yes/no GET INKEY (from ``supports_yes_no`` or the
    TERMINAL PROFILE given in the file). ``min_counter`` is the lowest counter the card may be sent
    (for a card whose counter another platform already advanced). ``line`` is where it is defined.
    """

    msisdn: str
    iccid: str
    tar: bytes
    spi: Spi
    kic: Kic
    kid: Kid
    kic_key: SecretKey
    kid_key: SecretKey
    minimum_security: int = DEFAULT_MINIMUM_SECURITY
    supports_yes_no: bool = True
    terminal_profile: TerminalProfile | None = None
    min_counter: int = 1
    line: int | None = None

    def key_set(self, counter: int = 0) -> KeySet:
        """The ``protocols.stk.ota.KeySet`` to build or check one packet with (keys revealed)."""
        return KeySet(
            kic_key=self.kic_key.reveal(),
            kid_key=self.kid_key.reveal(),
            minimum_security=self.minimum_security,
            counter=counter,
        )

    def __repr__(self) -> str:
        return (
            f"SimCard(msisdn={self.msisdn!r}, iccid={self.iccid!r}, tar={self.tar.hex().upper()}, "
            f"spi={self.spi.encode().hex().upper()}, kic={self.kic.encode():02X}, kid={self.kid.encode():02X}, "
            f"kic_key={self.kic_key!r}, kid_key={self.kid_key!r}, minimum_security={self.minimum_security:02X})"
        )

    __str__ = __repr__


class KeyStore:
    """The cards of a key file, by MSISDN and by ICCID. Build it with :meth:`load` or :meth:`from_yaml`."""

    def __init__(self, cards: list[SimCard] | tuple[SimCard, ...] = (), *, file: str | None = None) -> None:
        self.file = file
        self._by_msisdn: dict[str, SimCard] = {}
        self._by_iccid: dict[str, SimCard] = {}
        for card in cards:
            for index, key, what in (
                (self._by_msisdn, card.msisdn, "MSISDN"),
                (self._by_iccid, card.iccid, "ICCID"),
            ):
                first = index.get(key)
                if first is not None:
                    where = f" (first at line {first.line})" if first.line is not None else ""
                    raise ConfigError(f"duplicate {what} {key}{where}", file, card.line)
            self._by_msisdn[card.msisdn] = card
            self._by_iccid[card.iccid] = card

    @classmethod
    def load(cls, path: str | Path) -> KeyStore:
        """Read and check the key file at ``path``."""
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the SIM key file: {exc}", name) from None
        store = cls.from_yaml(text, file=name)
        log.info("loaded %d SIM cards from %s", len(store), name)
        return store

    @classmethod
    def from_yaml(cls, text: str, *, file: str = "<string>") -> KeyStore:
        """Parse and check key-file YAML; ``file`` names it in errors."""
        return cls(_Parser(file).parse(text), file=file)

    def by_msisdn(self, msisdn: str) -> SimCard | None:
        return self._by_msisdn.get(normalize_msisdn(msisdn))

    def by_iccid(self, iccid: str) -> SimCard | None:
        return self._by_iccid.get(iccid)

    def __len__(self) -> int:
        return len(self._by_msisdn)

    def __iter__(self) -> Iterator[SimCard]:
        return iter(self._by_msisdn.values())

    def __contains__(self, msisdn: object) -> bool:
        return isinstance(msisdn, str) and normalize_msisdn(msisdn) in self._by_msisdn

    def __repr__(self) -> str:
        return f"KeyStore({len(self)} cards from {self.file or '<memory>'})"


# --- parsing -----------------------------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _effective_des_parts(key: bytes) -> list[bytes]:
    return [bytes(b & 0xFE for b in key[i : i + 8]) for i in range(0, len(key), 8)]


class _Parser:
    """Walks the composed YAML node tree, so that every error can name its line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._constructor = SafeConstructor()

    def fail(self, node: Node | None, reason: str) -> ConfigError:
        return ConfigError(reason, self.file, None if node is None else _line(node))

    # --- scalars and mappings ------------------------------------------------------------------------

    def mapping(self, node: Node, what: str, allowed: frozenset[str]) -> dict[str, tuple[Node, Node]]:
        """A mapping's fields by name, each as (key node, value node); unknown or repeated names fail."""
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        fields: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                raise self.fail(key_node, f"{what}: field names must be plain words")
            name = str(key_node.value)
            if name in fields:
                raise self.fail(key_node, f"{what}: field {name!r} appears twice")
            if name not in allowed:
                raise self.fail(
                    key_node, f"{what}: unknown field {name!r} (known: {', '.join(sorted(allowed))})"
                )
            fields[name] = (key_node, value_node)
        return fields

    def text(self, node: Node, what: str) -> str:
        """The scalar as written in the file (so 0123 stays "0123", whatever YAML would make of it)."""
        if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG:
            raise self.fail(node, f"{what} must be a value")
        return str(node.value).strip()

    def boolean(self, node: Node, what: str) -> bool:
        if not isinstance(node, ScalarNode) or node.tag != _BOOL_TAG:
            raise self.fail(node, f"{what} must be true or false")
        return bool(self._constructor.construct_yaml_bool(node))

    def integer(self, node: Node, what: str, low: int, high: int) -> int:
        if not isinstance(node, ScalarNode) or node.tag != _INT_TAG:
            raise self.fail(node, f"{what} must be an integer")
        value = int(self._constructor.construct_yaml_int(node))
        if not low <= value <= high:
            raise self.fail(node, f"{what} must be {low}..{high}, got {value}")
        return value

    def choice(self, node: Node, what: str, choices: dict[str, Any]) -> Any:
        word = self.text(node, what).lower() if isinstance(node, ScalarNode) else None
        if word not in choices:
            raise self.fail(node, f"{what} must be one of {', '.join(choices)}")
        return choices[word]

    def hex_bytes(self, node: Node, what: str, *, secret: bool = False) -> bytes:
        raw = _HEX_SEPARATORS.sub("", self.text(node, what))
        if not _HEX.fullmatch(raw):
            shown = "" if secret else f" {raw!r}"
            raise self.fail(node, f"{what}{shown} is not an even number of hex digits")
        return bytes.fromhex(raw)

    # --- the document --------------------------------------------------------------------------------

    def parse(self, text: str) -> list[SimCard]:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else int(mark.line) + 1
            raise ConfigError(f"not valid YAML: {exc.problem or exc}", self.file, line) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not accept: no mark, a position
            line = text.count("\n", 0, exc.position) + 1
            raise ConfigError(
                f"not valid YAML: {exc.reason} (character {exc.character!r})", self.file, line
            ) from None
        if root is None:
            raise ConfigError("the SIM key file is empty", self.file)
        top = self.mapping(root, "the SIM key file", _TOP_FIELDS)
        if "version" in top:
            self.integer(top["version"][1], "version", 1, 1)
        floor = DEFAULT_MINIMUM_SECURITY
        if "minimum_security" in top:
            floor = self.minimum_security(top["minimum_security"][1])
        defaults: dict[str, tuple[Node, Node]] = {}
        if "defaults" in top:
            defaults = self.mapping(top["defaults"][1], "defaults", _CARD_FIELDS - {"msisdn", "iccid"})
        if "subscribers" not in top:
            raise self.fail(root, "the SIM key file has no 'subscribers' list")
        subscribers = top["subscribers"][1]
        if not isinstance(subscribers, SequenceNode):
            raise self.fail(subscribers, "subscribers must be a list")
        return [self.card(node, defaults, floor) for node in subscribers.value]

    def merged(self, node: Node, defaults: dict[str, tuple[Node, Node]]) -> dict[str, tuple[Node, Node]]:
        fields = self.mapping(node, "subscriber", _CARD_FIELDS)
        out = dict(defaults)
        for name, pair in fields.items():
            base = defaults.get(name)
            if name in _MERGED and base is not None:
                allowed = _SPI_FIELDS if name == "spi" else _KEY_FIELDS
                inner = {
                    **self.mapping(base[1], f"defaults.{name}", allowed),
                    **self.mapping(pair[1], name, allowed),
                }
                out[name] = (
                    pair[0],
                    MappingNode(pair[1].tag, [v for v in inner.values()], pair[1].start_mark),
                )
            else:
                out[name] = pair
        return out

    def card(self, node: Node, defaults: dict[str, tuple[Node, Node]], floor: int) -> SimCard:
        fields = self.merged(node, defaults)
        for required in ("msisdn", "iccid"):
            if required not in fields:
                raise self.fail(node, f"subscriber without {required}")
        msisdn_node = fields["msisdn"][1]
        msisdn = self.text(msisdn_node, "msisdn")
        if not _MSISDN.fullmatch(msisdn):
            raise self.fail(msisdn_node, f"msisdn {msisdn!r} must be 1 to 15 digits (E.164), '+' allowed")
        iccid_node = fields["iccid"][1]
        iccid = self.text(iccid_node, "iccid")
        if not _ICCID.fullmatch(iccid):
            raise self.fail(iccid_node, f"iccid {iccid!r} must be 18 to 20 digits (ITU-T E.118)")
        tar = DSTK_TAR
        if "tar" in fields:
            tar = self.hex_bytes(fields["tar"][1], "tar")
            if len(tar) != 3:
                raise self.fail(fields["tar"][1], f"tar must be 3 octets (6 hex digits), got {len(tar)}")
        minimum = floor
        if "minimum_security" in fields:
            minimum = self.minimum_security(fields["minimum_security"][1])
        spi_node = fields["spi"][1] if "spi" in fields else None
        spi = self.spi(spi_node)
        self.check_security(spi_node or node, spi, minimum)
        kic, kic_key = self.kic(fields.get("kic"), spi, node)
        kid, kid_key = self.kid(fields.get("kid"), spi, node)
        profile = None
        if "terminal_profile" in fields:
            raw = self.hex_bytes(fields["terminal_profile"][1], "terminal_profile")
            profile = TerminalProfile(raw)
        yes_no = profile is None or profile.supports(TerminalProfileFeature.GET_INKEY_BINARY_CHOICE)
        if "supports_yes_no" in fields:
            yes_no = self.boolean(fields["supports_yes_no"][1], "supports_yes_no")
        min_counter = 1
        if "min_counter" in fields:
            min_counter = self.integer(fields["min_counter"][1], "min_counter", 1, (1 << 40) - 1)
        return SimCard(
            msisdn=normalize_msisdn(msisdn),
            iccid=iccid,
            tar=tar,
            spi=spi,
            kic=kic,
            kid=kid,
            kic_key=kic_key,
            kid_key=kid_key,
            minimum_security=minimum,
            supports_yes_no=yes_no,
            terminal_profile=profile,
            min_counter=min_counter,
            line=_line(node),
        )

    # --- security ------------------------------------------------------------------------------------

    def minimum_security(self, node: Node) -> int:
        """An SPI1-coded octet: an integer (0x16) or a mapping {integrity, ciphering, counter}."""
        if isinstance(node, ScalarNode):
            return self.integer(node, "minimum_security", 0, 0x1F)
        fields = self.mapping(node, "minimum_security", _MSL_FIELDS)
        spi = Spi(
            integrity=self.choice(fields["integrity"][1], "integrity", _INTEGRITY)
            if "integrity" in fields
            else Integrity.NONE,
            ciphering=self.boolean(fields["ciphering"][1], "ciphering") if "ciphering" in fields else False,
            counter=self.choice(fields["counter"][1], "counter", _COUNTER)
            if "counter" in fields
            else CounterMode.NO_COUNTER,
        )
        return spi.encode()[0]

    def spi(self, node: Node | None) -> Spi:
        """The SPI; unset fields default to CC + ciphering + counter higher, answers secured the same way."""
        fields = {} if node is None else self.mapping(node, "spi", _SPI_FIELDS)

        def pick(name: str, choices: dict[str, Any], default: Any) -> Any:
            return self.choice(fields[name][1], f"spi.{name}", choices) if name in fields else default

        def flag(name: str, default: bool) -> bool:
            return self.boolean(fields[name][1], f"spi.{name}") if name in fields else default

        return Spi(
            integrity=pick("integrity", _INTEGRITY, Integrity.CC),
            ciphering=flag("ciphering", True),
            counter=pick("counter", _COUNTER, CounterMode.HIGHER),
            por=pick("por", _POR, PorMode.NONE),
            por_integrity=pick("por_integrity", _INTEGRITY, Integrity.CC),
            por_ciphering=flag("por_ciphering", True),
            por_via_sms_submit=flag("por_via_sms_submit", True),
        )

    def check_security(self, node: Node, spi: Spi, minimum: int) -> None:
        if not spi.meets(minimum):
            raise self.fail(
                node,
                f"spi {spi.encode().hex().upper()} is below the minimum security level {minimum:02X} "
                "(integrity, ciphering and counter must each reach it)",
            )
        need = Spi.decode(bytes((minimum, 0)))
        if spi.por_integrity < need.integrity or (need.ciphering and not spi.por_ciphering):
            raise self.fail(
                node,
                f"spi por_integrity {spi.por_integrity.name.lower()} / por_ciphering {spi.por_ciphering} is "
                f"below the minimum security level {minimum:02X}: answers from the card could be forged",
            )
        kinds = {spi.integrity, spi.por_integrity} - {Integrity.NONE}
        if len(kinds) > 1:
            raise self.fail(
                node, "spi integrity and por_integrity must both be cc or both be rc: one KID serves both"
            )

    def key(self, node: Node, what: str, lengths: tuple[int, ...], algorithm: str) -> SecretKey:
        key = self.hex_bytes(node, f"{what}.key", secret=True)
        if len(key) not in lengths:
            allowed = " or ".join(str(n) for n in lengths)
            raise self.fail(node, f"{what}.key is {len(key)} octets; {algorithm} needs {allowed}")
        if algorithm.startswith("3des"):
            parts = _effective_des_parts(key)
            if parts[0] == parts[1] or (len(parts) == 3 and parts[1] == parts[2]):
                raise self.fail(
                    node, f"{what}.key: its DES parts repeat, so it is single DES; use distinct parts"
                )
        if not any(key):
            raise self.fail(node, f"{what}.key is all zeros")
        return SecretKey(key)

    def key_fields(self, pair: tuple[Node, Node], what: str) -> tuple[dict[str, tuple[Node, Node]], int]:
        fields = self.mapping(pair[1], what, _KEY_FIELDS)
        kvn = self.integer(fields["kvn"][1], f"{what}.kvn", 0, 15) if "kvn" in fields else 1
        if "algorithm" not in fields:
            raise self.fail(pair[1], f"{what} without algorithm")
        return fields, kvn

    def kic(self, pair: tuple[Node, Node] | None, spi: Spi, card: Node) -> tuple[Kic, SecretKey]:
        needed = spi.ciphering or spi.por_ciphering
        if pair is None:
            if needed:
                raise self.fail(card, "spi asks for ciphering but the subscriber has no kic")
            return Kic(), _NO_KEY
        fields, kvn = self.key_fields(pair, "kic")
        algorithm, _, lengths = self.choice(fields["algorithm"][1], "kic.algorithm", _BLOCK_ALGORITHMS)
        word = self.text(fields["algorithm"][1], "kic.algorithm").lower()
        if "key" not in fields:
            if needed:
                raise self.fail(pair[1], "kic without key, and spi asks for ciphering")
            return Kic(algorithm, kvn), _NO_KEY
        return Kic(algorithm, kvn), self.key(fields["key"][1], "kic", lengths, word)

    def kid(self, pair: tuple[Node, Node] | None, spi: Spi, card: Node) -> tuple[Kid, SecretKey]:
        cc = Integrity.CC in (spi.integrity, spi.por_integrity)
        rc = Integrity.RC in (spi.integrity, spi.por_integrity)
        if pair is None:
            if cc or rc:
                raise self.fail(card, "spi asks for a checksum but the subscriber has no kid")
            return Kid(), _NO_KEY
        fields, kvn = self.key_fields(pair, "kid")
        word = self.text(fields["algorithm"][1], "kid.algorithm").lower()
        if rc:
            rc_algorithm = self.choice(
                fields["algorithm"][1], "kid.algorithm (redundancy check)", _RC_ALGORITHMS
            )
            if "key" in fields:
                raise self.fail(fields["key"][0], "a redundancy check (crc16 / crc32) takes no key")
            return Kid(rc_algorithm, kvn), _NO_KEY
        _, cc_algorithm, lengths = self.choice(fields["algorithm"][1], "kid.algorithm", _BLOCK_ALGORITHMS)
        if "key" not in fields:
            if cc:
                raise self.fail(pair[1], "kid without key, and spi asks for a cryptographic checksum")
            return Kid(cc_algorithm, kvn), _NO_KEY
        return Kid(cc_algorithm, kvn), self.key(fields["key"][1], "kid", lengths, word)
