"""Campaign directories (``configs/campaigns/``): every file read, validated, checked across files.

A directory holds YAML files (``*.yaml`` / ``*.yml``, read in name order, subdirectories ignored), each
with a top-level ``kind``: ``catalogue``, ``policy``, ``campaign`` or ``experiment`` (the schema is
``campaign_core.config``). Exactly one catalogue and one policy; campaign and experiment ids are unique
across the directory (``catalogue`` and ``policy`` name those files in ``CampaignSet.sources``, so they
are not ids).

Each file is validated with ``gateway.configfile.load_yaml_model``, so a mistake names the file, the
line and what is wrong. Then ``CampaignSet.check`` runs the rules across files (unknown packages,
unknown campaigns in experiments, a campaign in two experiments) and each of its errors is mapped back
to the line of the offending value; then the channel limits of ``gateway.campaigns.validate`` (USSD
codes without a handler, an SMS over its parts, a DSTK dialog over one SMS). Every error is collected,
not only the first: ``validate_campaign_dir`` returns them all, ``load_campaign_dir`` raises them as one
``CampaignDirError`` (the first error's file and line, the others on the lines after) or returns the
``CampaignSet``. A file that fails its own validation is left out of the later checks, and what refers
to it is not reported again (an experiment arm naming a campaign whose file is broken; a directory
"without" a catalogue whose catalogue file is broken).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from campaign_core.config import (
    CampaignConfig,
    CampaignSet,
    CatalogueConfig,
    CrossFileError,
    ExperimentConfig,
    PolicyConfig,
)
from gateway.campaigns.validate import DEFAULT_REPLY_TO, StkTarget, check_channels, stk_targets_from_keys
from gateway.configfile import load_yaml_model, yaml_line
from gateway.stk.keystore import KeyStore
from gateway.ussd.menus import MenuConfig, load_menus
from protocols.errors import ConfigError

__all__ = [
    "DEFAULT_USSD_MENUS",
    "KINDS",
    "CampaignDirError",
    "load_campaign_dir",
    "validate_campaign_dir",
]

DEFAULT_USSD_MENUS = Path("configs/ussd/menus.yaml")
"""The USSD menus the codes are checked against (relative to the working directory, like the other
shipped configs)."""

KINDS: dict[str, type[BaseModel]] = {
    "catalogue": CatalogueConfig,
    "policy": PolicyConfig,
    "campaign": CampaignConfig,
    "experiment": ExperimentConfig,
}
_RESERVED_IDS = frozenset({"catalogue", "policy"})


class CampaignDirError(ConfigError):
    """A campaign directory with mistakes: ``errors`` holds every one; the message is the first
    (``file:line: reason``) followed by the others, one per line."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("CampaignDirError needs at least one error")
        first = errors[0]
        super().__init__(
            "".join([first.reason, *(f"\n{error}" for error in errors[1:])]), first.file, first.line
        )
        self.errors = tuple(errors)


class _Head(BaseModel):
    """What every campaign file starts with: its ``kind`` (and, for campaigns and experiments, ``id``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    id: Any = None

    @model_validator(mode="before")
    @classmethod
    def _has_kind(cls, data: object) -> object:
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError(f"a campaign file is a mapping with a top-level kind: {', '.join(KINDS)}")
        return data

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        return kind


@dataclass(frozen=True, slots=True)
class _File:
    path: str
    kind: str | None  # None: no valid kind
    id: str | None  # campaigns and experiments, when the file says one
    model: BaseModel | None  # None: the file failed its own validation


def _peek(path: str, key: str) -> str | None:
    """The top-level ``key`` (``id``, ``kind``) of a file that failed validation, as far as it can be
    read (``yaml.safe_load`` takes the last of duplicate keys): so that its references, or the kind it
    meant to be, are not reported again."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _peek_id(path: str) -> str | None:
    return _peek(path, "id")


@dataclass(slots=True)
class _Reader:
    directory: str
    errors: list[ConfigError] = field(default_factory=list)

    def error(self, reason: str, file: str, location: Sequence[int | str] = ()) -> None:
        self.errors.append(ConfigError(reason, file, yaml_line(file, location) if location else None))

    def read(self, path: Path) -> _File:
        file = str(path)
        try:
            head = load_yaml_model(file, _Head)
        except ConfigError as exc:
            self.errors.append(exc)
            kind = _peek(file, "kind")
            return _File(file, kind if kind in KINDS else None, _peek_id(file), None)
        file_id = head.id if isinstance(head.id, str) else None
        try:
            model = load_yaml_model(file, KINDS[head.kind])
        except ConfigError as exc:
            self.errors.append(exc)
            return _File(file, head.kind, _peek_id(file) if file_id is None else file_id, None)
        return _File(file, head.kind, file_id, model)

    def one_of(self, kind: str, files: list[_File]) -> _File | None:
        """The single file of ``kind``; a missing one or each one after the first is an error."""
        of_kind = [f for f in files if f.kind == kind]
        if not of_kind:
            self.error(f"no {kind}: the directory needs one file with kind: {kind}", self.directory)
            return None
        for extra in of_kind[1:]:
            self.error(
                f"a second {kind} (the first is {of_kind[0].path}): one per directory", extra.path, ("kind",)
            )
        return of_kind[0]

    def unique_ids(self, files: list[_File]) -> list[_File]:
        """The campaign and experiment files whose id is not taken by an earlier one (or reserved)."""
        seen: dict[str, _File] = {}
        kept: list[_File] = []
        for f in files:
            if f.kind not in ("campaign", "experiment") or f.id is None:
                continue
            if f.id in _RESERVED_IDS:
                self.error(
                    f"id {f.id!r} is reserved (it names the {f.id} file): choose another", f.path, ("id",)
                )
                continue
            first = seen.get(f.id)
            if first is not None:
                self.error(
                    f"{f.kind} id {f.id!r} is already used by the {first.kind} in {first.path}",
                    f.path,
                    ("id",),
                )
                continue
            seen[f.id] = f
            kept.append(f)
        return kept


def _read_directory(path: str | Path) -> tuple[CampaignSet | None, bool, list[ConfigError]]:
    """Every file validated on its own, then across files: the set to check the channels of (when the
    catalogue could be read; a missing or broken policy is replaced by an empty one), whether it is
    complete, and the errors."""
    directory = Path(path)
    reader = _Reader(str(directory))
    if not directory.is_dir():
        reader.error("not a directory of campaign files", str(directory))
        return None, False, reader.errors
    files: list[_File] = []
    for entry in sorted(directory.iterdir()):
        if entry.suffix not in (".yaml", ".yml"):
            continue
        if entry.is_file():
            files.append(reader.read(entry))
        elif entry.is_symlink():  # dangling or a loop: skipping it would drop a campaign without a word
            reader.error(
                f"a link to nothing ({os.readlink(entry)}): the file it names cannot be read", str(entry)
            )
    catalogue_file = reader.one_of("catalogue", files)
    policy_file = reader.one_of("policy", files)
    kept = reader.unique_ids(files)
    if catalogue_file is None or not isinstance(catalogue_file.model, CatalogueConfig):
        return None, False, reader.errors  # without the catalogue every offer would look wrong
    policy = policy_file.model if policy_file is not None else None
    campaigns = [f for f in kept if isinstance(f.model, CampaignConfig)]
    experiments = [f for f in kept if isinstance(f.model, ExperimentConfig)]
    # campaigns left out after an error of their own: arms naming them are not reported again
    broken = {f.id for f in files if f.kind in ("campaign", None) and f.id is not None and f.model is None}
    broken |= {f.id for f in files if f.kind == "campaign" and f.id in _RESERVED_IDS}
    sources = {"catalogue": catalogue_file.path, **{f.id: f.path for f in kept if f.id is not None}}
    if policy_file is not None:
        sources["policy"] = policy_file.path
    campaign_set = CampaignSet(
        catalogue=catalogue_file.model,
        policy=policy if isinstance(policy, PolicyConfig) else PolicyConfig(kind="policy", version=1),
        campaigns=tuple(f.model for f in campaigns if isinstance(f.model, CampaignConfig)),
        experiments=tuple(f.model for f in experiments if isinstance(f.model, ExperimentConfig)),
        sources=sources,
    )
    by_source = {campaign_set.sources[e.id]: e for e in campaign_set.experiments}
    for error in campaign_set.check():
        experiment = by_source.get(error.source)
        if experiment is not None and _refers_to(error, experiment, broken):
            continue
        reader.errors.append(ConfigError(error.reason, error.source, yaml_line(error.source, error.path)))
    return campaign_set, isinstance(policy, PolicyConfig), reader.errors


def _refers_to(error: CrossFileError, experiment: ExperimentConfig, broken: set[str]) -> bool:
    """An arm naming a campaign whose own file failed: "does not exist" would only repeat that."""
    match error.path:
        case ("arms", int(index), "campaign") if index < len(experiment.arms):
            return experiment.arms[index].campaign in broken and "does not exist" in error.reason
    return False


def validate_campaign_dir(
    path: str | Path,
    *,
    ussd_menus: str | Path | None = DEFAULT_USSD_MENUS,
    sim_keys: str | Path | None = None,
    reply_to: str = DEFAULT_REPLY_TO,
) -> list[ConfigError]:
    """Every mistake of the campaign directory at ``path``, in file and line order (empty: valid).

    ``ussd_menus``: the USSD menu file the packages' codes must be routed by (None: not checked).
    ``sim_keys``: a SIM key file; each card's security level and handset is then a DSTK budget (by
    default the strongest level the gateway uses, on every kind of handset). ``reply_to``: the short
    code carried in every DSTK offer.
    """
    _, errors = _validate(path, ussd_menus=ussd_menus, sim_keys=sim_keys, reply_to=reply_to)
    return errors


def load_campaign_dir(
    path: str | Path,
    *,
    ussd_menus: str | Path | None = DEFAULT_USSD_MENUS,
    sim_keys: str | Path | None = None,
    reply_to: str = DEFAULT_REPLY_TO,
) -> CampaignSet:
    """The ``CampaignSet`` of the directory at ``path``, or ``CampaignDirError`` with every mistake
    (the checks of ``validate_campaign_dir``)."""
    campaign_set, errors = _validate(path, ussd_menus=ussd_menus, sim_keys=sim_keys, reply_to=reply_to)
    if errors or campaign_set is None:
        raise CampaignDirError(errors or [ConfigError("no campaign set", str(path))])
    return campaign_set


def _validate(
    path: str | Path, *, ussd_menus: str | Path | None, sim_keys: str | Path | None, reply_to: str
) -> tuple[CampaignSet | None, list[ConfigError]]:
    campaign_set, complete, errors = _read_directory(path)
    menus: MenuConfig | None = None
    if ussd_menus is not None:
        try:
            menus = load_menus(ussd_menus)
        except ConfigError as exc:
            errors.append(exc)
    targets: tuple[StkTarget, ...] | None = None
    if sim_keys is not None:
        try:
            targets = stk_targets_from_keys(KeyStore.load(sim_keys)) or None  # no cards: the default
        except ConfigError as exc:
            errors.append(exc)
    if campaign_set is not None:
        errors += check_channels(campaign_set, yaml_line, menus=menus, stk_targets=targets, reply_to=reply_to)
    errors.sort(key=lambda e: (e.file or "", e.line or 0))
    return (campaign_set if complete else None), errors
