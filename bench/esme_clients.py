"""One benchmark cell: bind one ESME, submit N submit_sm with W outstanding, unbind, print one JSON line.

    python bench/esme_clients.py {ours,smpplib,smpp34} --port P [--loop asyncio|uvloop] [--window W]
                                 [--count N] [--host H] [--system-id X] [--password Y]

Run by ``bench/smpp_throughput.py``, one process per cell, so that no client inherits another's
event loop, threads or garbage. The clock runs from the bind response to the last submit_sm_resp
(the node client, tests/interop/node/esme.js, measures the same span). Every client submits the same
submit_sm: source "12345", destination "31612345678" (TON/NPI 1/1), a 40-octet GSM text,
registered_delivery 0 (no receipts, so the sink does nothing but answer), transceiver bind.

JSON keys: client, loop, window, count, ok, errors, elapsed_s, cpu_s (CPU time of this process over the
same span, all threads), rate, and error when the cell failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SOURCE = "12345"
DEST = "31612345678"
TEXT = "Your 500 MB package is active. Enjoy it!"  # 40 characters, GSM 03.38 == ASCII here


def _install_loop(name: str) -> None:
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif name != "asyncio":
        raise SystemExit(f"unknown loop {name!r}")


# --- ours: gateway.smpp.client.SmppClient, await client.submit() from W worker tasks --------------------


async def _ours(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.smpp.client import ClientConfig, SmppClient
    from protocols.smpp.pdu import SubmitSm

    client = SmppClient(
        ClientConfig(
            args.host,
            args.port,
            args.system_id,
            args.password,
            window=args.window,
            enquire_link_interval=300,
            response_timeout=60,
        )
    )
    await client.start()
    pdu = SubmitSm(
        source_addr=SOURCE,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=DEST,
        short_message=TEXT.encode("ascii"),
    )
    remaining = args.count
    ok = 0
    submit = client.submit

    async def worker() -> None:
        # W of these keep exactly W submit_sm outstanding (the client's window is W as well)
        nonlocal remaining, ok
        while remaining > 0:
            remaining -= 1
            result = await submit(pdu)
            if result.message_id:
                ok += 1

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(args.window)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await client.close()
    errors = {str(k): v for k, v in client.stats.by_status.items() if k}
    return {"ok": ok, "errors": errors, "elapsed_s": elapsed, "cpu_s": cpu}


# --- smpp34: Rust core, awaitable submit_sm; W tasks over one Smsc handle ---------------------------------


async def _smpp34(args: argparse.Namespace) -> dict[str, Any]:
    import smpp34

    client = smpp34.Client(
        args.host,
        args.port,
        args.system_id,
        args.password,
        bind_type="TRX",
        window_size=args.window,
    )
    smsc = await client.connect()
    text = TEXT.encode("ascii")
    remaining = args.count
    ok = 0
    errors: dict[str, int] = {}

    async def worker() -> None:
        nonlocal remaining, ok
        while remaining > 0:
            remaining -= 1
            resp = await smsc.submit_sm(
                DEST, text, source_addr=SOURCE, dest_addr_ton=1, dest_addr_npi=1, data_coding=0
            )
            if resp.command_status == 0:
                ok += 1
            else:
                key = str(resp.command_status)
                errors[key] = errors.get(key, 0) + 1

    try:
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.window)))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        # PEERS.md 2.6: unbind and stop before exit, or the interpreter may abort in a finalizer
        try:
            await asyncio.wait_for(smsc.unbind(), 5)
        finally:
            await client.stop()
    return {"ok": ok, "errors": errors, "elapsed_s": elapsed, "cpu_s": cpu}


# --- smpplib: synchronous; send W, then one read_once per response, each answer lets one more out ---------


def _smpplib(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    import smpplib.client

    logging.getLogger("smpp").setLevel(logging.WARNING)
    client = smpplib.client.Client(args.host, args.port, timeout=30, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id=args.system_id, password=args.password)
    state = {"sent": 0, "answered": 0, "ok": 0}
    errors: dict[str, int] = {}
    text = TEXT.encode("ascii")

    def send_one() -> None:
        state["sent"] += 1
        client.send_message(
            source_addr_ton=0,
            source_addr_npi=0,
            source_addr=SOURCE,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=DEST,
            data_coding=0,
            short_message=text,
        )

    def on_sent(pdu: Any, **_: Any) -> None:
        state["answered"] += 1
        state["ok"] += 1
        if state["sent"] < args.count:
            send_one()

    def on_error(pdu: Any) -> None:
        state["answered"] += 1
        errors[str(pdu.status)] = errors.get(str(pdu.status), 0) + 1
        if state["sent"] < args.count:
            send_one()

    client.set_message_sent_handler(on_sent)
    client.set_error_pdu_handler(on_error)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(min(args.window, args.count)):
        send_one()
    while state["answered"] < args.count:
        client.read_once()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    client.unbind()
    client.disconnect()
    return {"ok": state["ok"], "errors": errors, "elapsed_s": elapsed, "cpu_s": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("client", choices=("ours", "smpplib", "smpp34"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--system-id", default="bench")
    ap.add_argument("--password", default="bench")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--count", type=int, default=50_000)
    args = ap.parse_args(argv)
    out: dict[str, Any] = {
        "client": args.client,
        "loop": "sync" if args.client == "smpplib" else args.loop,
        "window": args.window,
        "count": args.count,
    }
    try:
        if args.client == "smpplib":
            res = _smpplib(args)
        else:
            _install_loop(args.loop)
            res = asyncio.run(_ours(args) if args.client == "ours" else _smpp34(args))
        out.update(res)
        out["rate"] = round(res["ok"] / res["elapsed_s"]) if res["elapsed_s"] > 0 else 0
        if res["ok"] != args.count:
            out["error"] = f"{res['ok']} of {args.count} accepted"
    except Exception as exc:  # one JSON line whatever happens: the orchestrator reports it
        out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out), flush=True)
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main())
