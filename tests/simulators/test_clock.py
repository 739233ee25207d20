"""The simulated clock (simulators/clock.py): virtual time that jumps only when the loop is idle."""

from __future__ import annotations

import asyncio
import time

import pytest

from simulators.clock import SimClock, VirtualTimeLoop, run_simulated

START = 1_780_000_000.0


def test_a_simulated_day_passes_at_once() -> None:
    async def main(clock: SimClock) -> tuple[float, float]:
        began = time.perf_counter()
        await asyncio.sleep(86_400)
        return clock() - START, time.perf_counter() - began

    simulated, real = run_simulated(main, START)
    assert simulated == pytest.approx(86_400)
    assert real < 5  # virtual: no real day (or minute) passes


def test_timers_fire_in_order_at_their_simulated_times() -> None:
    async def main(clock: SimClock) -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        done = loop.create_future()
        for name, delay in (("b", 7200.0), ("a", 60.0), ("c", 86_400.0)):
            loop.call_later(delay, lambda n=name: fired.append((n, clock() - START)))
        loop.call_later(90_000, done.set_result, None)
        await done
        return fired

    assert run_simulated(main, START) == [("a", 60.0), ("b", 7200.0), ("c", 86_400.0)]


def test_socket_answers_beat_timeouts() -> None:
    """A request over loopback is answered before a virtual timeout far away fires, and a server that
    takes simulated time to answer makes a shorter timeout fire at exactly its simulated time."""

    async def main(clock: SimClock) -> tuple[bytes, float, float]:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            line = await reader.readline()
            if line == b"slow\n":
                await asyncio.sleep(3600)
            writer.write(line.upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        began = clock()
        writer.write(b"ping\n")
        answer = await asyncio.wait_for(reader.readline(), timeout=30)
        quick = clock() - began
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"slow\n")
        began = clock()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readline(), timeout=600)
        timed_out = clock() - began
        writer.close()
        server.close()
        await server.wait_closed()
        return answer, quick, timed_out

    answer, quick, timed_out = run_simulated(main, START)
    assert answer == b"PING\n"
    assert quick < 1  # no jump while the answer was on its way
    assert timed_out == pytest.approx(600)


def test_the_clock_waits_for_worker_threads() -> None:
    """While a thread of the loop's executor works, the loop does not jump past its timers."""

    async def main(clock: SimClock) -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        timer = loop.create_future()
        loop.call_later(1000, lambda: timer.done() or timer.set_result("timer"))
        work = loop.run_in_executor(None, lambda: time.sleep(0.05) or "thread")
        first = await asyncio.wait([timer, work], return_when=asyncio.FIRST_COMPLETED)
        winner = next(iter(first[0])).result()
        assert loop.busy_threads == 0
        return winner, clock() - START

    winner, elapsed = run_simulated(main, START)
    assert winner == "thread"
    assert elapsed < 1000


def test_sim_clock_maps_epoch_to_loop_time() -> None:
    async def main(clock: SimClock) -> tuple[float, float]:
        await asyncio.sleep(10)
        return clock(), clock.loop_time(START + 100) - asyncio.get_running_loop().time()

    now, ahead = run_simulated(main, START)
    assert now == pytest.approx(START + 10)
    assert ahead == pytest.approx(90)


def test_real_time_mode_uses_the_stock_loop() -> None:
    async def main(clock: SimClock) -> tuple[bool, float]:
        await asyncio.sleep(0.05)
        return isinstance(asyncio.get_running_loop(), VirtualTimeLoop), clock() - START

    virtual, elapsed = run_simulated(main, START, real_time=True)
    assert not virtual
    assert 0.04 < elapsed < 2
