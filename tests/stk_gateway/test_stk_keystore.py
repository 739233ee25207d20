"""The SIM key file: loading, and every mistake reported with file, line and reason (never the key).

In each invalid case the line the error must name carries the comment ``# <-``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.stk.keystore import DEFAULT_MINIMUM_SECURITY, KeyStore, SecretKey, SimCard
from protocols.errors import ConfigError
from protocols.stk.ota import (
    CcAlgorithm,
    CipherAlgorithm,
    CounterMode,
    Integrity,
    Kic,
    Kid,
    PorMode,
    RcAlgorithm,
    Spi,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "sim_keys.example.yaml"

AES_KEY = "200102030405060708090a0b0c0d0e0f"
AES_KEY2 = "201102030405060708090a0b0c0d0e0f"


def test_example_file_loads() -> None:
    store = KeyStore.load(EXAMPLE)
    assert len(store) == 3
    aes = store.by_msisdn("254700000001")
    assert aes is not None
    assert aes.iccid == "8925400000000000018"
    assert aes.tar == bytes.fromhex("BFFF01")
    assert aes.spi == Spi(
        integrity=Integrity.CC,
        ciphering=True,
        counter=CounterMode.HIGHER,
        por=PorMode.NONE,
        por_integrity=Integrity.CC,
        por_ciphering=True,
        por_via_sms_submit=True,
    )
    assert aes.spi.encode() == bytes.fromhex("1638")
    assert (aes.kic.encode(), aes.kid.encode()) == (0x12, 0x12)
    assert aes.kic_key.reveal() == bytes.fromhex(AES_KEY)
    assert aes.minimum_security == 0x16
    assert aes.supports_yes_no and aes.min_counter == 1 and aes.terminal_profile is None
    tdes = store.by_msisdn("+254700000002")  # the file writes it with "+"
    assert tdes is not None and tdes.msisdn == "254700000002"
    assert (tdes.kic, tdes.kid) == (Kic(CipherAlgorithm.TDES_2KEY, 1), Kid(CcAlgorithm.TDES_2KEY, 1))
    assert not tdes.supports_yes_no
    three = store.by_iccid("8925400000000000034")
    assert three is not None
    assert (three.kic.encode(), three.kid.encode()) == (0x29, 0x29)
    assert len(three.kic_key) == 24 and three.min_counter == 1000
    assert three.terminal_profile is not None and not three.supports_yes_no
    assert "254700000003" in store and "+254700000003" in store and 254700000003 not in store
    assert [card.msisdn for card in store] == ["254700000001", "254700000002", "254700000003"]
    assert store.by_msisdn("999") is None and store.by_iccid("1") is None
    assert repr(store) == f"KeyStore(3 cards from {EXAMPLE})"


def test_keys_never_in_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        store = KeyStore.load(EXAMPLE)
    texts = [repr(card) for card in store] + [str(card) for card in store] + [caplog.text, repr(store)]
    secrets = [card.kic_key.reveal().hex() for card in store] + [
        card.kid_key.reveal().hex() for card in store
    ]
    for text in texts:
        for secret in secrets:
            assert secret.lower() not in text.lower()
            assert secret[:8].lower() not in text.lower()
    card = store.by_msisdn("254700000001")
    assert card is not None
    assert "SecretKey(<16 octets>)" in repr(card)
    assert repr(card.kic_key) == str(card.kic_key) == "SecretKey(<16 octets>)"
    assert bool(card.kic_key) and not SecretKey(b"")


def test_key_set() -> None:
    card = KeyStore.load(EXAMPLE).by_msisdn("254700000001")
    assert card is not None
    keys = card.key_set(counter=41)
    assert (keys.kic_key, keys.kid_key, keys.counter, keys.minimum_security) == (
        bytes.fromhex(AES_KEY),
        bytes.fromhex(AES_KEY2),
        41,
        0x16,
    )


def _card(extra: str = "", *, msisdn: str = "254700000001", iccid: str = "8925400000000000018") -> str:
    return f"""\
subscribers:
  - msisdn: "{msisdn}"
    iccid: "{iccid}"
    kic: {{algorithm: aes, key: {AES_KEY}}}
    kid: {{algorithm: aes, key: {AES_KEY2}}}
{extra}"""


def test_defaults_and_minimal_card() -> None:
    store = KeyStore.from_yaml(_card())
    card = store.by_msisdn("254700000001")
    assert card is not None
    # unset SPI fields: CC + ciphering + counter higher, answers CC + ciphered via SMS-SUBMIT
    assert card.spi.encode() == bytes.fromhex("1638")
    assert card.minimum_security == DEFAULT_MINIMUM_SECURITY
    assert (card.kic.kvn, card.kid.kvn) == (1, 1)


def test_defaults_merge_field_by_field() -> None:
    text = f"""\
minimum_security: 0x16
defaults:
  spi: {{integrity: cc, ciphering: true, counter: higher, por: always}}
  kic: {{algorithm: aes, key: {AES_KEY}, kvn: 2}}
  kid: {{algorithm: aes, key: {AES_KEY2}, kvn: 2}}
  supports_yes_no: false
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    spi: {{por: on_error}}
    kic: {{kvn: 5}}
  - msisdn: "254700000002"
    iccid: "8925400000000000026"
    supports_yes_no: true
    tar: "BF FF 02"
"""
    store = KeyStore.from_yaml(text)
    first, second = list(store)
    assert first.spi.por is PorMode.ON_ERROR and first.spi.integrity is Integrity.CC
    assert first.kic == Kic(CipherAlgorithm.AES_CBC, 5) and first.kid.kvn == 2
    assert first.kic_key.reveal() == bytes.fromhex(AES_KEY)
    assert not first.supports_yes_no and second.supports_yes_no
    assert second.spi.por is PorMode.ALWAYS and second.tar == bytes.fromhex("BFFF02")


def test_redundancy_check_and_lab_security() -> None:
    text = """\
minimum_security: {integrity: rc}
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    spi: {integrity: rc, ciphering: false, counter: no_check, por_integrity: rc, por_ciphering: false}
    kid: {algorithm: crc32}
  - msisdn: "254700000002"
    iccid: "8925400000000000026"
    minimum_security: 0
    spi: {integrity: none, ciphering: false, counter: none, por_integrity: none, por_ciphering: false}
    kic: {algorithm: des}
    kid: {algorithm: 3des3, key: 000102030405060708090A0B0C0D0E0F1011121314151617, kvn: 0}
    terminal_profile: "FFFFFFFF1F000000FF"
    supports_yes_no: true
    min_counter: 77
"""
    rc, lab = list(KeyStore.from_yaml(text))
    assert rc.kid == Kid(RcAlgorithm.CRC32, 1) and rc.kic == Kic() and not rc.kid_key and not rc.kic_key
    assert rc.spi.encode() == bytes.fromhex("0924")
    assert lab.spi.encode() == bytes.fromhex("0020")
    assert lab.kic == Kic(CipherAlgorithm.DES_CBC, 1) and not lab.kic_key
    assert lab.kid == Kid(CcAlgorithm.TDES_3KEY, 0) and len(lab.kid_key) == 24
    assert lab.supports_yes_no and lab.min_counter == 77 and lab.minimum_security == 0


def test_kid_without_key_when_not_needed() -> None:
    text = """\
minimum_security: 0
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    spi: {integrity: none, ciphering: false, por_integrity: none, por_ciphering: false}
    kid: {algorithm: aes}
"""
    (card,) = KeyStore.from_yaml(text)
    assert card.kid == Kid(CcAlgorithm.AES_CMAC, 1) and not card.kid_key
    (bare,) = KeyStore.from_yaml(text.replace("    kid: {algorithm: aes}\n", ""))
    assert (bare.kic, bare.kid, bare.spi.encode()) == (Kic(), Kid(), bytes.fromhex("1020"))


def test_simcard_built_in_code_needs_no_file() -> None:
    card = SimCard(
        "254700000009",
        "8925400000000000099",
        b"\xbf\xff\x01",
        Spi(),
        Kic(),
        Kid(),
        SecretKey(b""),
        SecretKey(b""),
    )
    store = KeyStore([card])
    assert store.by_msisdn("254700000009") is card and store.file is None
    assert repr(store) == "KeyStore(1 cards from <memory>)"
    with pytest.raises(ConfigError, match=r"duplicate MSISDN 254700000009$"):
        KeyStore([card, card])


INVALID = {
    "bad hex key": (
        f"""\
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    kic: {{algorithm: aes, key: "200102030405060708090a0b0c0d0eZZ"}}  # <-
    kid: {{algorithm: aes, key: {AES_KEY2}}}
""",
        "kic.key is not an even number of hex digits",
    ),
    "odd hex digits": (
        _card().replace(f"key: {AES_KEY2}}}", f"key: {AES_KEY2[:-1]}}}  # <-"),
        "kid.key is not an even number of hex digits",
    ),
    "aes key length": (
        _card().replace(f"key: {AES_KEY}}}", f"key: {AES_KEY[:-2]}}}  # <-"),
        "kic.key is 15 octets; aes needs 16 or 24 or 32",
    ),
    "3des2 key length": (
        _card().replace(f"aes, key: {AES_KEY}}}", f"3des2, key: {AES_KEY}0102030405060708}}  # <-"),
        "kic.key is 24 octets; 3des2 needs 16",
    ),
    "des key length": (
        _card().replace(f"aes, key: {AES_KEY2}}}", f"des, key: {AES_KEY2}}}  # <-"),
        "kid.key is 16 octets; des needs 8",
    ),
    "3des key that is single DES": (
        _card().replace(f"aes, key: {AES_KEY}}}", "3des2, key: 01020304050607080102030405060708}  # <-"),
        "kic.key: its DES parts repeat",
    ),
    "3des3 key whose last parts repeat": (
        _card().replace(
            f"aes, key: {AES_KEY2}}}", "3des3, key: 0A0B0C0D0E0F10110102030405060708 0102030405060708}  # <-"
        ),
        "kid.key: its DES parts repeat",
    ),
    "all-zero key": (
        _card().replace(f"key: {AES_KEY}}}", f"key: {'00' * 16}}}  # <-"),
        "kic.key is all zeros",
    ),
    "duplicate msisdn": (
        _card()
        + """\
  - msisdn: "+254700000001"  # <-
    iccid: "8925400000000000026"
    kic: {algorithm: aes, key: 200102030405060708090a0b0c0d0e0f}
    kid: {algorithm: aes, key: 201102030405060708090a0b0c0d0e0f}
""",
        "duplicate MSISDN 254700000001 (first at line 2)",
    ),
    "duplicate iccid": (
        _card()
        + """\
  - msisdn: "254700000002"  # <-
    iccid: "8925400000000000018"
    kic: {algorithm: aes, key: 200102030405060708090a0b0c0d0e0f}
    kid: {algorithm: aes, key: 201102030405060708090a0b0c0d0e0f}
""",
        "duplicate ICCID 8925400000000000018 (first at line 2)",
    ),
    "unknown spi field": (_card("    spi: {ciphring: true}  # <-\n"), "spi: unknown field 'ciphring'"),
    "unknown top-level field": ("subscriber: []  # <-\n", "unknown field 'subscriber'"),
    "unknown card field": (_card("    colour: blue  # <-\n"), "subscriber: unknown field 'colour'"),
    "integrity ds": (_card("    spi: {integrity: ds}  # <-\n"), "spi.integrity must be one of none, rc, cc"),
    "ciphering not a bool": (
        _card("    spi: {ciphering: maybe}  # <-\n"),
        "spi.ciphering must be true or false",
    ),
    "below the minimum security": (
        "minimum_security: 0x16\n" + _card("    spi: {counter: no_check}  # <-\n"),
        "spi 0E38 is below the minimum security level 16",
    ),
    "answers below the minimum security": (
        _card("    spi: {por_integrity: none}  # <-\n"),
        "answers from the card could be forged",
    ),
    "answers not ciphered as the minimum asks": (
        "minimum_security: {integrity: cc, ciphering: true}\n"
        + _card("    spi: {por_ciphering: false}  # <-\n"),
        "answers from the card could be forged",
    ),
    "integrity kinds disagree": (
        "minimum_security: 0\n" + _card("    spi: {integrity: rc, por_integrity: cc}  # <-\n"),
        "one KID serves both",
    ),
    "rc takes no key": (
        """\
minimum_security: 0
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    spi: {integrity: rc, ciphering: false, por_integrity: rc, por_ciphering: false}
    kid: {algorithm: crc16, key: 0102}  # <-
""",
        "a redundancy check (crc16 / crc32) takes no key",
    ),
    "rc with a block cipher": (
        """\
minimum_security: 0
subscribers:
  - msisdn: "254700000001"
    iccid: "8925400000000000018"
    spi: {integrity: rc, ciphering: false, por_integrity: none, por_ciphering: false}
    kid: {algorithm: aes}  # <-
""",
        "kid.algorithm (redundancy check) must be one of crc16, crc32",
    ),
    "no kic but ciphering": (
        """\
subscribers:
  - msisdn: "254700000001"  # <-
    iccid: "8925400000000000018"
    kid: {algorithm: aes, key: 201102030405060708090a0b0c0d0e0f}
""",
        "spi asks for ciphering but the subscriber has no kic",
    ),
    "no kid but checksum": (
        """\
subscribers:
  - msisdn: "254700000001"  # <-
    iccid: "8925400000000000018"
    kic: {algorithm: aes, key: 200102030405060708090a0b0c0d0e0f}
""",
        "spi asks for a checksum but the subscriber has no kid",
    ),
    "kic without key": (
        _card().replace(f"{{algorithm: aes, key: {AES_KEY}}}", "{algorithm: aes}  # <-"),
        "kic without key, and spi asks for ciphering",
    ),
    "kid without key": (
        _card().replace(f"{{algorithm: aes, key: {AES_KEY2}}}", "{algorithm: aes}  # <-"),
        "kid without key, and spi asks for a cryptographic checksum",
    ),
    "kic without algorithm": (
        _card().replace(f"{{algorithm: aes, key: {AES_KEY}}}", f"{{key: {AES_KEY}}}  # <-"),
        "kic without algorithm",
    ),
    "unknown algorithm": (
        _card().replace(f"{{algorithm: aes, key: {AES_KEY}}}", f"{{algorithm: rc4, key: {AES_KEY}}}  # <-"),
        "kic.algorithm must be one of des, 3des2, 3des3, aes",
    ),
    "kvn out of range": (
        _card().replace(f"key: {AES_KEY}}}", f"key: {AES_KEY}, kvn: 16}}  # <-"),
        "kic.kvn must be 0..15, got 16",
    ),
    "kvn not a number": (
        _card().replace(f"key: {AES_KEY}}}", f"key: {AES_KEY}, kvn: one}}  # <-"),
        "kic.kvn must be an integer",
    ),
    "tar length": (_card("    tar: BFFF  # <-\n"), "tar must be 3 octets (6 hex digits), got 2"),
    "tar not hex": (_card("    tar: XYZ123  # <-\n"), "tar 'XYZ123' is not an even number of hex digits"),
    "msisdn not digits": (
        _card(msisdn="07OO1234").replace('msisdn: "07OO1234"', 'msisdn: "07OO1234"  # <-'),
        "msisdn '07OO1234' must be 1 to 15 digits",
    ),
    "msisdn missing a value": (
        _card().replace('msisdn: "254700000001"', "msisdn:  # <-"),
        "msisdn must be a value",
    ),
    "iccid too short": (
        _card(iccid="89254").replace('iccid: "89254"', 'iccid: "89254"  # <-'),
        "iccid '89254' must be 18 to 20 digits",
    ),
    "iccid missing": (
        """\
subscribers:
  - msisdn: "254700000001"  # <-
    kic: {algorithm: aes, key: 200102030405060708090a0b0c0d0e0f}
""",
        "subscriber without iccid",
    ),
    "terminal profile not hex": (_card("    terminal_profile: FFG0  # <-\n"), "terminal_profile 'FFG0'"),
    "min_counter zero": (_card("    min_counter: 0  # <-\n"), "min_counter must be 1..1099511627775, got 0"),
    "supports_yes_no not a bool": (
        _card("    supports_yes_no: sometimes  # <-\n"),
        "supports_yes_no must be true or false",
    ),
    "minimum_security out of range": (
        "minimum_security: 0x20  # <-\n" + _card(),
        "minimum_security must be 0..31",
    ),
    "minimum_security unknown field": (
        "minimum_security: {integrity: cc, por: always}  # <-\n" + _card(),
        "minimum_security: unknown field 'por'",
    ),
    "minimum_security mapping values": (
        "minimum_security: {ciphering: true, counter: later}  # <-\n" + _card(),
        "counter must be one of none, no_check, higher, exactly_one_higher",
    ),
    "version": ("version: 2  # <-\n" + _card(), "version must be 1..1, got 2"),
    "not YAML": ('subscribers:\n  - msisdn: "1" iccid: "2"  # <-\n', "not valid YAML"),
    "control character": ('subscribers:\n  - msisdn: "1\x07"  # <-\n', "not valid YAML: special characters"),
    "tab indentation": ("subscribers:\n\t- msisdn: 1  # <-\n", "not valid YAML"),
    "subscribers not a list": ("subscribers: {a: 1}  # <-\n", "subscribers must be a list"),
    "no subscribers": ("minimum_security: 0x02  # <-\n", "no 'subscribers' list"),
    "subscriber not a mapping": ("subscribers:\n  - just a string  # <-\n", "subscriber must be a mapping"),
    "top level not a mapping": ("- a  # <-\n- b\n", "the SIM key file must be a mapping"),
    "field twice": (
        _card("    spi: {integrity: cc}\n    spi: {integrity: cc}  # <-\n"),
        "field 'spi' appears twice",
    ),
    "field name not a word": (_card("    1: x  # <-\n"), "field names must be plain words"),
    "defaults with an msisdn": (
        'defaults: {msisdn: "1"}  # <-\n' + _card(),
        "defaults: unknown field 'msisdn'",
    ),
    "defaults spi not a mapping": (
        "defaults:\n  spi: cc  # <-\n" + _card("    spi: {integrity: cc}\n"),
        "defaults.spi must be a mapping",
    ),
}


def _expected_line(text: str) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    assert len(lines) == 1, f"mark exactly one line in {text!r}"
    return lines[0]


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_key_file(case: str, tmp_path: Path) -> None:
    text, reason = INVALID[case]
    path = tmp_path / "sim_keys.yaml"
    path.write_text(text, encoding="utf-8")
    line = _expected_line(text)
    with pytest.raises(ConfigError) as caught:
        KeyStore.load(path)
    error = caught.value
    assert reason in error.reason
    assert (error.file, error.line) == (str(path), line)
    assert str(error).startswith(f"{path}:{line}: ")
    for key in (AES_KEY, AES_KEY2, AES_KEY[:-2], "200102030405060708090a0b0c0d0eZZ"):
        assert key not in str(error)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty") as caught:
        KeyStore.load(path)
    assert caught.value.file == str(path) and caught.value.line is None


def test_two_documents() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        KeyStore.from_yaml(_card() + "---\n" + _card(), file="two.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the SIM key file") as caught:
        KeyStore.load(tmp_path / "absent.yaml")
    assert caught.value.line is None


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"subscribers: []\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        KeyStore.load(path)


def test_empty_subscriber_list_is_valid() -> None:
    assert len(KeyStore.from_yaml("subscribers: []\n")) == 0
