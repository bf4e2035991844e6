"""The result server: fast subscribers get every window in order, a slow one skips (drop-oldest) without holding
the publisher back, a reconnecting subscriber resumes at the live edge, and the live page in headless Chromium
draws the windows it receives."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.sync.client import connect

import egostream
from egostream.errors import InputError
from egostream.io.result_server import ResultServer, parse_bind
from egostream.io.sinks import read_results
from egostream.report.page import build_page
from egostream.stream.schema import WindowResult, decode_payload
from tests.report.chromium import launch, needs_chromium
from tests.report.synthetic_stream import SyntheticStream

PUBLISHED = 400


def _windows(stream: SyntheticStream, count: int) -> list[WindowResult]:
    """``count`` windows of the real stream, renumbered 0..count-1 (LTA samples left out: smaller messages)."""
    results = read_results(stream.results).results
    return [dataclasses.replace(r, window_index=i, lta=dataclasses.replace(r.lta, samples=()) if r.lta else None)
            for i, r in ((i, results[i % len(results)]) for i in range(count))]


def _wait(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _collect(url: str, into: list[WindowResult], limit: int | None = None) -> threading.Thread:
    def body() -> None:
        for result in egostream.subscribe(url):
            into.append(result)
            if limit is not None and len(into) >= limit:
                return

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_fast_subscribers_get_every_window_in_order_and_a_slow_one_skips(synthetic_stream: SyntheticStream) -> None:
    windows = _windows(synthetic_stream, PUBLISHED)
    with ResultServer(queue_size=16) as server:
        assert server.url.startswith("ws://127.0.0.1:")
        fast: list[list[WindowResult]] = [[], []]
        threads = [_collect(server.url, received, PUBLISHED) for received in fast]
        slow_indices = []
        with connect(server.url, max_queue=1) as slow:  # reads nothing until the stream has ended
            _wait(lambda: len(server.stats()) == 3)
            for result in windows:
                server.publish(result)  # never waits for a subscriber
                time.sleep(0.005)
            for thread in threads:
                thread.join(timeout=120)
            try:
                while True:
                    slow_indices.append(decode_payload(slow.recv(timeout=3)).window_index)
            except TimeoutError:
                pass
        assert server.published == PUBLISHED
        for received in fast:
            assert received == windows  # every window, in order, equal to what was published
        assert slow_indices == sorted(set(slow_indices)) and 0 < len(slow_indices) < PUBLISHED
        _wait(lambda: len([s for s in server.stats() if s.skipped]) == 1)
        slow_stats = next(s for s in server.stats() if s.skipped)
        assert slow_stats.sent == len(slow_indices) and slow_stats.sent + slow_stats.skipped == PUBLISHED
        assert slow_indices[-1] == PUBLISHED - 1  # it skipped the oldest, so it ends at the live edge


def test_a_reconnecting_subscriber_resumes_at_the_live_edge(synthetic_stream: SyntheticStream) -> None:
    windows = _windows(synthetic_stream, 60)
    with ResultServer() as server:
        first: list[WindowResult] = []
        thread = _collect(server.url, first, 5)
        _wait(lambda: len(server.stats()) == 1)
        for result in windows[:20]:
            server.publish(result)
        thread.join(timeout=60)
        _wait(lambda: not [s for s in server.stats() if s.sent < 5])
        assert [r.window_index for r in first] == [0, 1, 2, 3, 4]
        for result in windows[20:40]:  # published while nobody listens: gone
            server.publish(result)
        again: list[WindowResult] = []
        thread = _collect(server.url, again, 20)
        _wait(lambda: len(server.stats()) == 2 and server.published == 40)
        live_edge = server.published
        for result in windows[40:]:
            server.publish(result)
        thread.join(timeout=60)
        assert [r.window_index for r in again] == list(range(live_edge, 60))


def test_bind_addresses_default_to_this_machine() -> None:
    assert parse_bind("8765") == ("127.0.0.1", 8765) and parse_bind("0.0.0.0:80") == ("0.0.0.0", 80)
    with pytest.raises(InputError, match="--serve"):
        parse_bind("localhost:http")


def test_the_live_page_is_served_and_404_elsewhere() -> None:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    with ResultServer(page=build_page([], mode="live")) as server:
        page = urlopen(server.page_url, timeout=10).read().decode()
        assert '"mode":"live"' in page
        with pytest.raises(HTTPError, match="404"):
            urlopen(server.page_url + "nothing", timeout=10)


@needs_chromium[0]
@needs_chromium[1]
def test_the_live_page_in_chromium_draws_the_windows_it_receives(synthetic_stream: SyntheticStream,
                                                                 tmp_path: Path) -> None:
    windows = _windows(synthetic_stream, 30)
    with ResultServer(page=build_page([], mode="live")) as server:
        command, profile = launch(server.page_url, "--remote-debugging-port=0")
        browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: any(s.format == "json" for s in server.stats()), 90)
            for result in windows:
                server.publish(result)
                time.sleep(0.02)
            _wait(lambda: any(report.get("windows") == len(windows) for report in server.page_reports().values()),
                  90)
            report = next(iter(server.page_reports().values()))
            assert report["errors"] == []
        finally:
            browser.terminate()
            _, stderr = browser.communicate(timeout=30)
            shutil.rmtree(profile, ignore_errors=True)
        assert [line for line in stderr.splitlines() if ":CONSOLE" in line] == []
