"""The USSD service of the gateway: USSD dialogues over SMPP 3.4 (``ussd_service_op`` 5.3.2.44,
``its_session_info`` 5.3.2.43; MAP USSD semantics of 3GPP TS 22.090 / TS 24.090) routed by service
code to a menu engine configured in YAML, one-shot handlers and external HTTP apps (the aggregator
CON / END model); network-initiated menus and notifications.

- ``menus``: the YAML schema, the loader (ConfigError with file, line and reason) and paging;
- ``navigator``: one subscriber's walk through the screens;
- ``http_adapter``: a service code delegated to an external web app;
- ``service``: the asyncio adapter on the ESME (``UssdService``).
"""

from gateway.ussd.http_adapter import HttpAppError, HttpUssdApp, parse_response
from gateway.ussd.menus import MenuConfig, load_menus, parse_menus
from gateway.ussd.navigator import CallFailed, Handler, Item, MenuSession, Provider, Screen, UssdContext
from gateway.ussd.service import Journey, JourneyStep, UssdPushError, UssdService, UssdStats

__all__ = [
    "CallFailed",
    "Handler",
    "HttpAppError",
    "HttpUssdApp",
    "Item",
    "Journey",
    "JourneyStep",
    "MenuConfig",
    "MenuSession",
    "Provider",
    "Screen",
    "UssdContext",
    "UssdPushError",
    "UssdService",
    "UssdStats",
    "load_menus",
    "parse_menus",
    "parse_response",
]
