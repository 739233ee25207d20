"""Usage events per second from the wire into trigger decisions, on one core (issue #6).

Two paths, each through the real ingest service (``gateway.ingest.service.IngestService``: SQLite
journal with group commit, trigger detection, acknowledgement only after the commit), the gateway
in its own process pinned to core 0, the load on core 1:

- ``http``: batched JSON lines to ``POST /v1/events`` (10,000 events a body, 4 bodies in flight).
  Rate = events / (first POST sent .. last event detected). Goal: >= 200k events/s.
- ``mqtt``: JSON events at QoS 1 through Mosquitto. The messages are published first and queued by
  the broker for two persistent sessions, so the publisher is out of the measurement; then a bare
  aiomqtt subscriber (json.loads and a set insert per message, auto-ack) and our ingest (schema,
  journal, detection, manual PUBACK after the commit) each drain the same backlog from the same
  broker. Rate = messages / (first .. last). Goal: ours within 20 % of the bare subscriber.

The Diameter path (CCR-U over TCP) is measured by ``bench/ingest_diameter.py``.

The HTTP server also reports its CPU time per event (``time.thread_time`` of each phase in its own
thread, so the figures hold on a box shared with other loads, unlike the rate): ``parse`` (validating
the bodies), ``detect`` (the journal's commit listener: trigger detection, hand-over, checkpoint
snapshots), ``journal`` (the journal's worker thread: SQLite), ``other`` (aiohttp, the event loop,
the kernel's share) and ``total``; ``gc`` is the garbage collector's share of all of them.

    .venv/bin/python bench/ingest.py             # both paths, 3 runs each (about 1-2 minutes)
    .venv/bin/python bench/ingest.py --quick     # smoke run
    .venv/bin/python bench/ingest.py --paths http --events 500000 --json
    .venv/bin/python bench/ingest.py --paths http --default-gc   # CPython's default collector settings
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SUBSCRIBERS = 100_000
KINDS = ("usage", "threshold", "exhausted")  # round by round: half way, 90 %, used up


def pin(core: int) -> None:
    with contextlib.suppress(AttributeError, OSError):
        if (os.cpu_count() or 1) > core:
            os.sched_setaffinity(0, {core})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event_line(i: int) -> bytes:
    msisdn = 254_700_000_000 + i % SUBSCRIBERS
    kind = KINDS[(i // SUBSCRIBERS) % len(KINDS)]
    percent = {"usage": 50.0, "threshold": 90.0, "exhausted": 100.0}[kind]
    return (
        f'{{"event_id":"e{i}","msisdn":"{msisdn}","kind":"{kind}","package_id":"data-1gb",'
        f'"timestamp":{1_780_000_000 + i / 1000:.3f},"sequence":{i // SUBSCRIBERS},"used_bytes":{i % 1000},'
        f'"quota_bytes":1073741824,"percent":{percent}}}'
    ).encode()


# --- the gateway side (a child process) ----------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    import logging

    from gateway.ingest.config import HttpConfig, IngestConfig, JournalConfig, MqttConfig
    from gateway.ingest.service import IngestService
    from gateway.runtime import settle_heap

    logging.basicConfig(level=logging.WARNING)
    pin(0)
    if args.serve == "http":
        config = IngestConfig(
            http=HttpConfig(port=args.port, max_body_bytes=1 << 30),
            journal=JournalConfig(path=Path(args.dir) / "ingest.sqlite"),
        )
    else:
        config = IngestConfig(
            mqtt=MqttConfig(port=args.port, client_id=args.client_id, topics=("bench/#",)),
            journal=JournalConfig(path=Path(args.dir) / "ingest.sqlite"),
        )
    service = IngestService(config, lambda trigger: None)
    first: list[float] = []
    take = service.pipeline.take

    async def timed_take(events: Any) -> None:  # the time the first event reached the pipeline
        if not first:
            first.append(time.time())
        await take(events)

    service.pipeline.take = timed_take  # type: ignore[method-assign]
    await service.start()
    if not args.default_gc:  # as `tgw ingest` does once started
        settle_heap()
    measure = Measure(service, args.expect)
    print("ready", flush=True)
    await measure.reached.wait()
    counters = service.pipeline.counters
    result = {
        "first": first[0],
        "done": measure.done,
        "events": counters.events_taken,
        "triggers": sum(counters.triggers.values()),
        "commits": counters.journal_commits,
        "cpu": measure.cpu,
    }
    await service.stop()
    print(json.dumps(result), flush=True)


class Measure:
    """When the last expected event was detected, and the CPU seconds the server spent until then.

    ``done`` is taken right after the journal's commit listener (detection) has seen the expected
    number of events: no polling loop of the benchmark's own on the measured core. ``cpu`` holds the
    phases, each measured in its own thread (``time.thread_time``): ``parse`` (the bodies or
    messages), ``detect`` (the commit listener: detection, hand-over, checkpoint snapshots),
    ``journal`` (the journal's worker thread: encoding and SQLite), and ``total`` (the whole
    process, ``time.process_time``). CPU time, unlike wall time, holds on a box shared with other
    loads."""

    def __init__(self, service: Any, expect: int) -> None:
        import gateway.ingest.http as http_module
        import gateway.ingest.mqtt as mqtt_module

        self.reached = asyncio.Event()
        self.done = 0.0
        self.cpu = {"parse": 0.0, "detect": 0.0, "journal": 0.0, "total": 0.0, "gc": 0.0}
        self._phases = {"parse": 0.0, "detect": 0.0, "journal": 0.0, "gc": 0.0}
        self._gc_started = 0.0
        gc.callbacks.append(self._collecting)
        for module, name in (
            (http_module, "parse_json"),
            (http_module, "parse_json_lines"),
            (mqtt_module, "parse_json"),
        ):
            setattr(module, name, self._timed("parse", getattr(module, name)))  # looked up at each use
        journal = service.journal
        detect = self._timed("detect", journal._listener)
        pipeline = service.pipeline

        def detect_then_check(batches: Any) -> None:
            detect(batches)
            if not self.reached.is_set() and pipeline.counters.events_taken >= expect:
                self.done = time.time()
                self.cpu = {**self._phases, "total": time.process_time() - self._process_start}
                self.reached.set()

        journal._listener = detect_then_check
        journal._write = self._timed("journal", journal._write)
        self._process_start = time.process_time()

    def _collecting(self, phase: str, info: dict[str, int]) -> None:
        """Garbage collection (part of whichever phase it interrupts, also shown on its own)."""
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self._phases["gc"] += time.thread_time() - self._gc_started

    def _timed(self, phase: str, function: Any) -> Any:
        phases = self._phases

        def run(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args)
            finally:
                phases[phase] += time.thread_time() - started

        return run


def start_server(
    kind: str, directory: str, port: int, expect: int, client_id: str = "", *, default_gc: bool = False
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--serve", kind, "--dir", directory, "--port", str(port),
         "--expect", str(expect), "--client-id", client_id or "tgw-bench-ingest",
         *(["--default-gc"] if default_gc else [])],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit(f"ingest server did not start: {line!r}")
    return proc


def server_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    out, _ = proc.communicate(timeout=600)
    return dict(json.loads(out.strip().splitlines()[-1]))


# --- http -------------------------------------------------------------------------------------------


async def post_all(url: str, bodies: list[bytes], concurrency: int) -> float:
    import aiohttp

    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(headers={"Content-Type": "application/x-ndjson"}) as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with session.post(url, data=body) as response:
                    answer = await response.json()
                    assert response.status == 202 and answer["rejected"] == 0, answer

        started = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return started


def run_http(events: int, per_body: int = 10_000, default_gc: bool = False) -> dict[str, Any]:
    bodies = [
        b"\n".join(event_line(i) for i in range(start, min(events, start + per_body))) + b"\n"
        for start in range(0, events, per_body)
    ]
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        proc = start_server("http", directory, port, events, default_gc=default_gc)
        pin(1)
        started = asyncio.run(post_all(f"http://127.0.0.1:{port}/v1/events", bodies, 4))
        result = server_result(proc)
    seconds = result["done"] - started
    return {"events": result["events"], "seconds": seconds, "rate": result["events"] / seconds,
            "triggers": result["triggers"], "commits": result["commits"], "cpu": result["cpu"]}  # fmt: skip


def cpu_per_event(run: dict[str, Any], phase: str) -> float:
    cpu = run["cpu"]
    seconds = cpu["total"] - cpu["parse"] - cpu["detect"] - cpu["journal"] if phase == "other" else cpu[phase]
    return float(seconds) / run["events"] * 1e6


# --- mqtt -------------------------------------------------------------------------------------------


class Broker:
    def __init__(self, directory: Path, messages: int) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SystemExit("mosquitto missing: apt-get install mosquitto")
        self.port = free_port()
        config = directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_queued_messages {messages * 2 + 1000}\nmax_inflight_messages 1000\n"
        )
        self.proc = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.1):
                return
            time.sleep(0.02)
        raise SystemExit("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def subscribe_once(port: int, client_id: str) -> None:
    """Create a persistent session with a QoS 1 subscription, so the broker queues for it."""
    import aiomqtt

    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id, clean_session=False) as client:
        await client.subscribe("bench/#", qos=1)


def publish(port: int, messages: int) -> None:
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="tgw-bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [
        client.publish(f"bench/{254_700_000_000 + i % SUBSCRIBERS}", event_line(i), qos=1)
        for i in range(messages)
    ]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


async def bare_drain(port: int, messages: int) -> tuple[float, float]:
    import aiomqtt

    seen: set[str] = set()
    first = 0.0
    async with aiomqtt.Client(
        "127.0.0.1", port, identifier="tgw-bench-bare", clean_session=False, max_inflight_messages=1000
    ) as client:
        await client.subscribe("bench/#", qos=1)
        count = 0
        async for message in client.messages:
            if not first:
                first = time.time()
            payload = message.payload
            assert isinstance(payload, bytes)
            seen.add(json.loads(payload)["event_id"])
            count += 1
            if count >= messages:
                break
    return first, time.time()


def run_mqtt(messages: int, default_gc: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        broker = Broker(Path(directory), messages)
        try:
            asyncio.run(subscribe_once(broker.port, "tgw-bench-bare"))
            asyncio.run(subscribe_once(broker.port, "tgw-bench-ingest"))
            pin(1)
            publish(broker.port, messages)  # queued at the broker for both sessions
            bare = subprocess.run(
                [sys.executable, str(HERE), "--bare-mqtt", str(broker.port), "--expect", str(messages)],
                capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            bare_first, bare_done = json.loads(bare.stdout)
            proc = start_server(
                "mqtt", directory, broker.port, messages, "tgw-bench-ingest", default_gc=default_gc
            )
            result = server_result(proc)
        finally:
            broker.stop()
    ours = result["events"] / (result["done"] - result["first"])
    bare_rate = messages / (bare_done - bare_first)
    return {"messages": messages, "ours": ours, "bare": bare_rate, "ratio": ours / bare_rate,
            "triggers": result["triggers"], "commits": result["commits"]}  # fmt: skip


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paths", default="http,mqtt")
    parser.add_argument("--events", type=int, default=300_000, help="events per HTTP run")
    parser.add_argument("--messages", type=int, default=30_000, help="messages per MQTT run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="run the servers with CPython's default collector settings instead of what `tgw ingest` "
        "applies once started (gateway.runtime.settle_heap)",
    )
    # internal: the child processes
    parser.add_argument("--serve", choices=("http", "mqtt"), help=argparse.SUPPRESS)
    parser.add_argument("--bare-mqtt", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-id", default="tgw-bench-ingest", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args))
        return
    if args.bare_mqtt:
        pin(0)
        print(json.dumps(asyncio.run(bare_drain(args.bare_mqtt, args.expect))))
        return
    if args.quick:
        args.events, args.messages, args.runs = 50_000, 5_000, 1
    report: dict[str, Any] = {}
    paths = args.paths.split(",")
    if "http" in paths:
        runs = [run_http(args.events, default_gc=args.default_gc) for _ in range(args.runs)]
        rate = statistics.median(r["rate"] for r in runs)
        report["http"] = {"runs": runs, "median_events_per_s": rate, "goal": 200_000, "met": rate >= 200_000}
        if not args.json:
            print(
                f"http  JSON lines -> triggers: {rate:>10,.0f} events/s (median of {len(runs)}; goal 200,000)"
            )
            for r in runs:
                print(
                    f"      run: {r['events']:,} events in {r['seconds']:.2f} s, {r['commits']} commits, {r['triggers']:,} triggers"
                )
            print("      server CPU per event (us), median of the runs:")
            for phase in ("parse", "detect", "journal", "other", "total", "gc"):
                print(f"        {phase:8s} {statistics.median(cpu_per_event(r, phase) for r in runs):6.2f}")
    if "mqtt" in paths:
        runs = [run_mqtt(args.messages, args.default_gc) for _ in range(args.runs)]
        ours = statistics.median(r["ours"] for r in runs)
        bare = statistics.median(r["bare"] for r in runs)
        ratio = statistics.median(r["ratio"] for r in runs)
        report["mqtt"] = {
            "runs": runs,
            "ours": ours,
            "bare_aiomqtt": bare,
            "ratio": ratio,
            "goal": 0.8,
            "met": ratio >= 0.8,
        }
        if not args.json:
            print(f"mqtt  ours (journal, detection, late PUBACK): {ours:>8,.0f} msg/s")
            print(
                f"      bare aiomqtt subscriber (same broker):  {bare:>8,.0f} msg/s   ratio {ratio:.2f} (goal >= 0.80)"
            )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
