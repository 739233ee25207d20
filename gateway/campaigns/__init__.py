"""Campaign configuration files: the loader of ``configs/campaigns/`` and ``tgw validate`` (issue #7).

``load_campaign_dir`` / ``validate_campaign_dir`` (``gateway.campaigns.loader``) read a directory of
campaign files (schema: ``campaign_core.config``) with every error as file, line and reason; the checks
against the gateway's channels (USSD routing, SMS parts, DSTK size) are in ``gateway.campaigns.validate``.
"""

from gateway.campaigns.loader import (
    DEFAULT_USSD_MENUS,
    CampaignDirError,
    load_campaign_dir,
    validate_campaign_dir,
)
from gateway.campaigns.validate import DEFAULT_REPLY_TO, StkTarget, default_stk_targets, stk_targets_from_keys

__all__ = [
    "DEFAULT_REPLY_TO",
    "DEFAULT_USSD_MENUS",
    "CampaignDirError",
    "StkTarget",
    "default_stk_targets",
    "load_campaign_dir",
    "stk_targets_from_keys",
    "validate_campaign_dir",
]
