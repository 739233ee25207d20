"""The channel limits of a campaign directory (issue #7), checked against the gateway's own channels.

``campaign_core.config`` says what a valid campaign is; what fits the channels is checked here, with the
code that will carry the contacts (which ``campaign_core`` must not import):

- USSD codes: every catalogue package a campaign offers is bought by dialling its ``ussd_code``, so the
  USSD menus (``gateway.ussd.menus``, default ``configs/ussd/menus.yaml``) must route that code to the
  purchase handler (``buy_package``): a one-shot code (``*123*{mb}#``) or a menu walked with the code's
  parameters as shortcuts (``*123*1*3*1*1#``). When the handler's ``args`` name the ``mb`` (or ``price``)
  the code buys, it must be the package's volume (price). Errors point at the package in the catalogue.
- SMS parts: each ``sms`` step's text is rendered (``campaign_core.texts.render_step_text``) for the
  worst case the offer allows (every set of options the engine may list, the longest payment word) and
  measured as the gateway's SMS sender cuts it (``protocols.gsm.parts_needed``: GSM 7-bit when every
  character allows it, else UCS-2; 8-bit-reference concatenation). More than ``max_parts`` is an error
  at the step's text, with the parts needed and the characters over.
- DSTK fit: each ``stk`` step becomes the ``StkOffer`` the gateway pushes (every option set for a
  ``menu``, each possible largest package for a ``confirm``; the step's text as the prompt or title),
  is encoded with ``gateway.stk.offer.build_offer_command`` for every kind of handset, wrapped in the
  DSTK offer message and compared with what one SMS-PP carries under the security level
  (``protocols.stk.ota.max_payload``, as ``StkPushService.push`` does before refusing an offer). By
  default that is the strongest level the gateway uses (AES, cryptographic checksum, ciphering and
  counter: the defaults of ``configs/sim_keys.example.yaml``); with a key file, each card's own level
  and handset. An offer over the budget is an error at the step's text naming by how many octets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from campaign_core.config import CampaignConfig, CampaignSet, JourneyStep, PackageConfig
from campaign_core.model import Channel, OfferOption, Payment
from campaign_core.texts import render_step_text
from gateway.stk.keystore import KeyStore
from gateway.stk.offer import DialogStyle, PackageOption, StkOffer, build_offer_command
from gateway.ussd.menus import (
    ActionScreen,
    DynamicScreen,
    FinalScreen,
    InputScreen,
    MenuConfig,
    MenuScreen,
    Page,
    paginate,
    render,
)
from protocols.errors import ConfigError, DecodeError, LocalProtocolError
from protocols.gsm import Coding, choose_coding, gsm7_length, part_capacity, parts_needed, ucs2_length
from protocols.stk.dstk import DstkOffer
from protocols.stk.ota import CcAlgorithm, CipherAlgorithm, CounterMode, Integrity, Kic, Kid, Spi, max_payload
from protocols.stk.terminal import TerminalProfile, TerminalProfileFeature
from protocols.ussd import PROFILES, UssdProfile, parse_service_code

__all__ = [
    "DEFAULT_REPLY_TO",
    "PURCHASE_HANDLER",
    "Locate",
    "StkTarget",
    "check_channels",
    "check_sms_parts",
    "check_stk_fit",
    "check_ussd_codes",
    "default_stk_targets",
    "stk_targets_from_keys",
]

PURCHASE_HANDLER = "buy_package"
"""The USSD handler that buys a package (``configs/ussd/menus.yaml``)."""

DEFAULT_REPLY_TO = "12345"
"""The short code the SIM applet answers to, carried in every DSTK offer (one octet per digit): a
five-digit short code unless the caller names the gateway's own."""

_WORST_OFFER_ID = "0" * 20  # campaign_core.model.offer_id: always 20 characters
_WORST_MSISDN = "0"

Locate = Callable[[str, Sequence[int | str]], int | None]
"""``locate(file, location)``: the line of a value in a campaign file (``gateway.configfile.yaml_line``)."""


# --- worst cases ---------------------------------------------------------------------------------------


def _payments(campaign: CampaignConfig) -> Payment:
    """The longest payment word the offer's options may carry (``{payment}`` in a template)."""
    payment = campaign.offer.payment if campaign.offer is not None else "balance"
    allowed = {
        "balance_then_credit": (Payment.BALANCE, Payment.CREDIT),
        "balance": (Payment.BALANCE,),
        "credit": (Payment.CREDIT,),
    }[payment]
    return max(allowed, key=lambda p: len(p.value))


def _offer_packages(campaign: CampaignConfig, campaigns: CampaignSet) -> list[PackageConfig]:
    if campaign.offer is None:
        return []
    found = (campaigns.package(package_id) for package_id in campaign.offer.packages)
    return [package for package in found if package is not None]  # unknown ones: CampaignSet.check


def _option_sets(packages: Sequence[PackageConfig], options: str) -> list[tuple[PackageConfig, ...]]:
    """Every set of options a step may show, reduced to the worst of each kind.

    ``largest``: each package may turn out to be the largest affordable one. ``all``: for each possible
    largest package, it with every package not larger (more lines only make a text longer), largest
    first. ``none``: no options.
    """
    if options == "none" or not packages:
        return [()]
    if options == "largest":
        return [(package,) for package in packages]
    by_size = sorted(packages, key=lambda p: -p.volume_mb)
    return [
        (largest, *(p for p in by_size if p is not largest and p.volume_mb <= largest.volume_mb))
        for largest in packages
    ]


def _offer_options(packages: Iterable[PackageConfig], payment: Payment) -> tuple[OfferOption, ...]:
    return tuple(OfferOption(p.id, p.volume_mb, p.price, payment, p.ussd_code) for p in packages)


def _render(step: JourneyStep, options: tuple[OfferOption, ...], currency: str) -> str:
    return render_step_text(step.text, options, currency, step.option_format, step.option_separator)


def _describe_options(options: Sequence[PackageConfig]) -> str:
    if not options:
        return "no options"
    listed = ", ".join(f"{p.volume_mb} MB" for p in options)
    return f"option{'s' if len(options) > 1 else ''} {listed}"


# --- USSD codes ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    """Where dialling a code ends: a handler with its rendered args, or why it does not reach one."""

    handler: str | None
    args: Mapping[str, str]
    problem: str = ""
    refused: tuple[str, ...] = ()  # shortcut inputs a screen refused on the way (it showed an error)


def _resolve(menus: MenuConfig, dialled: str, profile: UssdProfile) -> _Route:
    """Route ``dialled`` as the USSD service does (``MenuConfig.route_for``) and walk a menu with its
    shortcut inputs as ``gateway.ussd.navigator`` does, without calling anything."""
    try:
        code = parse_service_code(dialled)
    except DecodeError:
        return _Route(None, {}, "it is not a USSD service code")
    match = menus.route_for(code)
    if match is None:
        return _Route(None, {}, "no service code of the menus answers it")
    route = match.route
    variables: dict[str, object] = {
        "msisdn": "",
        "service_code": dialled,
        "params": code.params,
        "session_id": "",
        **match.named,
    }
    if route.http is not None:
        return _Route(None, {}, f"it goes to the external USSD app at {route.http.url}")
    if route.handler is not None:
        return _Route(route.handler, {k: render(v, variables) for k, v in route.args.items()})
    assert route.menu is not None  # a route has a menu, a handler or an http app
    return _walk(menus, route.menu, list(match.shortcut_inputs), variables, profile)


@dataclass(slots=True)
class _Frame:
    """A screen waiting for input in the walk: its pages, the page shown, the wrong inputs so far."""

    screen: MenuScreen | InputScreen
    pages: tuple[Page, ...]
    page: int = 0
    retries: int = 0


def _walk(
    menus: MenuConfig, entry: str, inputs: list[str], variables: dict[str, object], profile: UssdProfile
) -> _Route:
    """The menu dialogue ``gateway.ussd.navigator.MenuSession.start_menu`` runs for the shortcut
    ``inputs``, step for step (paging, back, home, wrong inputs), up to the first handler, final screen
    or dynamic screen (whose items only a provider knows), or the screen left waiting for input."""
    navigation = menus.settings.navigation
    refused: list[str] = []
    stack: list[_Frame] = []
    frame: _Frame | None = None
    target: str | None = entry
    push = False
    while True:
        if target is not None:
            screen = menus.screens[target]
            if push and frame is not None:
                stack.append(frame)
            where = f"screen {target!r}"
            target = None
            if isinstance(screen, ActionScreen):
                args = {k: render(v, variables) for k, v in screen.args.items()}
                return _Route(screen.handler, args, refused=tuple(refused))
            if isinstance(screen, FinalScreen):
                return _Route(None, {}, f"it ends at the final {where}", tuple(refused))
            if isinstance(screen, DynamicScreen):
                problem = f"it reaches the dynamic {where}, whose options exist only at run time"
                return _Route(None, {}, problem, tuple(refused))
            pages: tuple[Page, ...] = ()
            if isinstance(screen, MenuScreen):
                pages = paginate(
                    render(screen.text, variables),
                    [(option.key, render(option.label, variables)) for option in screen.options],
                    profile,
                    menus.settings,
                    back_on_first=screen.navigation and navigation.show_back and bool(stack),
                )
            frame = _Frame(screen, pages)
        assert frame is not None
        screen = frame.screen
        where = f"screen {screen.id!r}"
        if not inputs:
            page = f"page {frame.page + 1} of the " if frame.page else ""
            problem = f"it stops at {page}the {screen.kind} {where}, which waits for input"
            return _Route(None, {}, problem, tuple(refused))
        value = inputs.pop(0).strip()
        if screen.navigation:
            if value == navigation.more and frame.pages and frame.pages[frame.page].more:
                frame.page += 1
                continue
            if value == navigation.back and (frame.page > 0 or stack):
                if frame.page > 0:
                    frame.page -= 1
                else:
                    frame = stack.pop()
                    frame.retries = 0
                continue
            if value == navigation.home and (frame.page > 0 or stack):
                stack.clear()
                frame, target, push = None, entry, False
                continue
        limit = menus.settings.max_invalid
        if isinstance(screen, InputScreen):
            if screen.validation.check(value):
                variables[screen.save_as] = value
                target, push = screen.next, True
                continue
            limit = screen.max_retries
        elif frame.pages and value in frame.pages[frame.page].keys:
            option = next(o for o in screen.options if o.key == value)
            for name, template in option.set.items():
                variables[name] = render(template, variables)
            target, push = option.next, True
            continue
        refused.append(f"{value} at the {where}")
        frame.retries += 1
        if frame.retries > limit:
            return _Route(None, {}, f"the {where} gives up after too many wrong inputs", tuple(refused))


def _amount(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def check_ussd_codes(
    campaigns: CampaignSet,
    menus: MenuConfig,
    locate: Locate,
    *,
    handler: str = PURCHASE_HANDLER,
    profile: UssdProfile | None = None,
) -> list[ConfigError]:
    """The USSD code of every package a campaign offers reaches ``handler`` and buys that package."""
    profile = profile or PROFILES["standard"]
    offered_by: dict[str, list[str]] = {}
    for campaign in campaigns.campaigns:
        if campaign.offer is not None:
            for package_id in campaign.offer.packages:
                offered_by.setdefault(package_id, []).append(campaign.id)
    file = campaigns.sources.get("catalogue", "catalogue")
    errors: list[ConfigError] = []
    for index, package in enumerate(campaigns.catalogue.packages):
        users = offered_by.get(package.id)
        if users is None:
            continue
        line = locate(file, ("packages", index, "ussd_code"))
        who = f"package {package.id!r} (offered by {', '.join(dict.fromkeys(users))})"
        routed = _resolve(menus, package.ussd_code, profile)
        refused = f" (wrong inputs on the way: {', '.join(routed.refused)})" if routed.refused else ""
        if routed.handler != handler:
            problem = routed.problem or f"it reaches the handler {routed.handler!r}"
            errors.append(
                ConfigError(
                    f"USSD code {package.ussd_code} of {who} does not reach the {handler!r} handler "
                    f"of {menus.file}: {problem}{refused}",
                    file,
                    line,
                )
            )
            continue
        if routed.refused:
            errors.append(
                ConfigError(
                    f"USSD code {package.ussd_code} of {who} reaches the {handler!r} handler of {menus.file} "
                    f"only through wrong inputs, each showing the subscriber an error: "
                    f"{', '.join(routed.refused)}",
                    file,
                    line,
                )
            )
        mb = routed.args.get("mb")
        # the handler matches the mb as a string (str(volume_mb)): "0100", fullwidth digits or a
        # superscript (digits to str.isdigit, the superscript not even to int()) never buy the package
        if mb is not None and mb.isdigit() and mb != str(package.volume_mb):
            errors.append(
                ConfigError(
                    f"USSD code {package.ussd_code} buys {mb} MB in {menus.file}, but {who} is "
                    f"{package.volume_mb} MB",
                    file,
                    line,
                )
            )
        price = _amount(routed.args.get("price", ""))
        # a NaN is no package's price (and a signalling one would raise on !=)
        if price is not None and (price.is_nan() or price != package.price):
            errors.append(
                ConfigError(
                    f"USSD code {package.ussd_code} costs {routed.args['price']} in {menus.file}, but {who} "
                    f"costs {package.price}",
                    file,
                    line,
                )
            )
    return errors


# --- SMS parts -----------------------------------------------------------------------------------------


def _characters(text: str) -> tuple[Coding, int]:
    """The coding the SMS sender picks and the text's length in its units (septets or UTF-16 units)."""
    coding = choose_coding(text)
    return coding, gsm7_length(text) if coding is Coding.GSM7 else ucs2_length(text)


def _capacity(coding: Coding, parts: int) -> int:
    if parts == 1:
        return part_capacity(coding)
    return parts * part_capacity(coding, 6)  # each part carries the 6-octet concatenation header


def check_sms_parts(campaigns: CampaignSet, locate: Locate) -> list[ConfigError]:
    """Every ``sms`` step's text, rendered for the worst case, needs at most ``max_parts`` messages."""
    currency = campaigns.catalogue.currency
    errors: list[ConfigError] = []
    for campaign in campaigns.campaigns:
        file = campaigns.sources.get(campaign.id, campaign.id)
        packages = _offer_packages(campaign, campaigns)
        payment = _payments(campaign)
        for index, step in enumerate(campaign.journey):
            if step.channel is not Channel.SMS:
                continue
            worst: tuple[int, int, str, tuple[PackageConfig, ...]] | None = None
            for option_set in _option_sets(packages, step.options):
                text = _render(step, _offer_options(option_set, payment), currency)
                candidate = (parts_needed(text), _characters(text)[1], text, option_set)
                if worst is None or candidate[:2] > worst[:2]:
                    worst = candidate
            assert worst is not None
            parts, length, text, option_set = worst
            if parts <= step.max_parts:
                continue
            coding = _characters(text)[0]
            capacity = _capacity(coding, step.max_parts)
            name = "GSM 7-bit" if coding is Coding.GSM7 else "UCS-2"
            errors.append(
                ConfigError(
                    f"journey step {index + 1} (sms): the text needs {parts} parts, max_parts is "
                    f"{step.max_parts}: {length} {name} characters with {_describe_options(option_set)}, "
                    f"{max(length - capacity, 1)} over the {capacity} that fit {step.max_parts} "
                    f"part{'s' if step.max_parts > 1 else ''}; rendered: {text!r}",
                    file,
                    locate(file, ("journey", index, "text")),
                )
            )
    return errors


# --- DSTK fit ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StkTarget:
    """A security level and a handset a DSTK dialog must fit: ``budget`` octets of DSTK offer message
    in one SMS-PP (``max_payload``), and what the handset shows (``build_offer_command``'s options)."""

    budget: int
    security: str
    supports_yes_no: bool = True
    terminal_profile: TerminalProfile | None = None

    @property
    def select_item(self) -> bool:
        return self.terminal_profile is None or self.terminal_profile.supports(
            TerminalProfileFeature.SELECT_ITEM
        )


def default_stk_targets() -> tuple[StkTarget, ...]:
    """The strongest default security level the gateway uses (``configs/sim_keys.example.yaml``: AES,
    cryptographic checksum, ciphering, counter) on every kind of handset the offer dialog adapts to."""
    spi = Spi(integrity=Integrity.CC, ciphering=True, counter=CounterMode.HIGHER)
    budget = max_payload(spi, Kic(CipherAlgorithm.AES_CBC, 1), Kid(CcAlgorithm.AES_CMAC, 1))
    security = "AES with checksum, ciphering and counter"
    no_select_item = TerminalProfile.from_features((), length=9)
    return (
        StkTarget(budget, security),
        StkTarget(budget, f"{security}, handset without yes/no GET INKEY", supports_yes_no=False),
        StkTarget(
            budget,
            f"{security}, handset without yes/no GET INKEY or SELECT ITEM",
            supports_yes_no=False,
            terminal_profile=no_select_item,
        ),
    )


def stk_targets_from_keys(keys: KeyStore) -> tuple[StkTarget, ...]:
    """Each card of a key file: its own security level and handset (one target per distinct budget and
    handset capabilities)."""
    targets: dict[tuple[int, bool, bool], StkTarget] = {}
    for card in keys:
        target = StkTarget(
            max_payload(card.spi, card.kic, card.kid),
            f"the card of {card.msisdn} in {keys.file or 'the key file'}",
            card.supports_yes_no,
            card.terminal_profile,
        )
        targets.setdefault((target.budget, target.supports_yes_no, target.select_item), target)
    return tuple(targets.values())


def _dialog_name(style: DialogStyle, target: StkTarget) -> str:
    if style is DialogStyle.MENU and target.select_item:
        return "SELECT ITEM menu"
    return "GET INKEY yes/no" if target.supports_yes_no else "DISPLAY TEXT"


def check_stk_fit(
    campaigns: CampaignSet,
    locate: Locate,
    *,
    targets: Sequence[StkTarget] | None = None,
    reply_to: str = DEFAULT_REPLY_TO,
) -> list[ConfigError]:
    """Every ``stk`` step's dialog, for the worst case, fits one SMS under every target."""
    targets = default_stk_targets() if targets is None else targets
    currency = campaigns.catalogue.currency
    errors: list[ConfigError] = []
    for campaign in campaigns.campaigns:
        file = campaigns.sources.get(campaign.id, campaign.id)
        packages = _offer_packages(campaign, campaigns)
        payment = _payments(campaign)
        for index, step in enumerate(campaign.journey):
            if step.channel is not Channel.STK or not packages:
                continue
            style = DialogStyle(step.style)
            line = locate(file, ("journey", index, "text"))
            shape = "largest" if style is DialogStyle.CONFIRM else "all"
            worst: tuple[int, int, str, StkTarget, tuple[PackageConfig, ...]] | None = None
            try:
                for option_set in _option_sets(packages, shape):
                    text = _render(step, _offer_options(option_set, payment), currency)
                    offer = StkOffer(
                        _WORST_OFFER_ID,
                        _WORST_MSISDN,
                        tuple(PackageOption(p.id, p.volume_mb, p.price, currency) for p in option_set),
                        style,
                        text,
                    )
                    for target in targets:
                        command = build_offer_command(
                            offer,
                            style,
                            supports_yes_no=target.supports_yes_no,
                            terminal_profile=target.terminal_profile,
                        )
                        size = len(DstkOffer(_WORST_OFFER_ID, reply_to, command).encode())
                        over = size - target.budget
                        if worst is None or over > worst[0]:
                            worst = (over, size, _dialog_name(style, target), target, option_set)
            except LocalProtocolError as exc:
                errors.append(
                    ConfigError(
                        f"journey step {index + 1} (stk): the dialog cannot be built: {exc}", file, line
                    )
                )
                continue
            if worst is None or worst[0] <= 0:
                continue
            over, size, dialog, target, option_set = worst
            errors.append(
                ConfigError(
                    f"journey step {index + 1} (stk {style.value}): the DSTK dialog does not fit one SMS: "
                    f"{over} octet{'s' if over > 1 else ''} over; the {dialog} with "
                    f"{_describe_options(option_set)} makes a {size}-octet DSTK offer, and one SMS carries "
                    f"{target.budget} under {target.security}",
                    file,
                    line,
                )
            )
    return errors


def check_channels(
    campaigns: CampaignSet,
    locate: Locate,
    *,
    menus: MenuConfig | None,
    stk_targets: Sequence[StkTarget] | None = None,
    reply_to: str = DEFAULT_REPLY_TO,
) -> list[ConfigError]:
    """USSD codes (when ``menus`` is given), SMS parts and DSTK fit, in that order."""
    errors = [] if menus is None else check_ussd_codes(campaigns, menus, locate)
    errors += check_sms_parts(campaigns, locate)
    errors += check_stk_fit(campaigns, locate, targets=stk_targets, reply_to=reply_to)
    return errors
