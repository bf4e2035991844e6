"""The result server: every :class:`~egostream.stream.schema.WindowResult` of a stream, published over WebSocket to
any number of subscribers, and a live page (the report page in live mode) on the same port.

- ``ws://HOST:PORT/ws``: one binary WebSocket message per window, the msgpack map of the result schema (the payload
  of :func:`~egostream.stream.schema.encode_frame`, without its length prefix: a WebSocket message is already
  framed); ``/ws?format=json``: the same map as one JSON text message (NaN as ``null``), for browsers.
- ``http://HOST:PORT/``: the live page, given to the server as HTML text (:func:`egostream.report.page.build_page`
  with ``mode="live"``); pages report what they drew (``{"page": "status", "windows": N, "errors": [...]}``) and the
  server keeps the last report of each (:meth:`ResultServer.page_reports`).

A subscriber sees the windows published after it connected (a reconnecting subscriber resumes at the live edge; no
history is kept). Slow-subscriber policy: each subscriber has its own queue of at most ``queue_size`` windows and
a small socket send buffer (``send_buffer_bytes``); when its queue is full, the OLDEST queued window is dropped
(counted as ``skipped``), so a slow subscriber skips windows and stays near the live edge, and :meth:`publish`
never waits for any subscriber: the stream is never stalled.

The server runs an asyncio loop in a daemon thread; :meth:`ResultServer.publish` may be called from any thread.
It binds to 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack

from egostream.errors import InputError
from egostream.io.queues import BoundedQueue, OverflowPolicy
from egostream.stream.schema import WindowResult, result_to_record

__all__ = ["ResultServer", "SubscriberStats", "parse_bind", "DEFAULT_HOST"]

DEFAULT_HOST = "127.0.0.1"


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT`` alone: on 127.0.0.1) -> ``(host, port)``; port 0 picks a free port.

    Raises:
        InputError: naming ``--serve`` when the text is not of that form.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(None, "--serve", f"expected HOST:PORT (e.g. 127.0.0.1:8765), got {text!r}")
    return host, int(port)


@dataclass
class SubscriberStats:
    """One subscriber: its address, the format it asked for, windows sent and windows skipped (dropped from its
    full queue)."""

    peer: str
    format: str
    sent: int = 0
    skipped: int = 0


@dataclass(eq=False)
class _Subscriber:
    stats: SubscriberStats
    queue: BoundedQueue[Any]  # drop-oldest; the WebSocket messages waiting to be sent
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class ResultServer:
    """Publishes window results to WebSocket subscribers (see the module docstring).

    Args:
        host: interface to bind (default 127.0.0.1: this machine only).
        port: TCP port (0: a free one; :attr:`port` tells which after :meth:`start`).
        page: HTML of the live page served at ``/`` (``None``: no page, 404).
        queue_size: windows queued per subscriber before its oldest are skipped.
        send_buffer_bytes: kernel send buffer of each subscriber's socket (bounds what waits outside the queue).
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0, *, page: str | None = None, queue_size: int = 64,
                 send_buffer_bytes: int = 64 * 1024) -> None:
        if queue_size < 1:
            raise InputError(None, "queue_size", f"must be >= 1, got {queue_size}")
        self.host, self.port = host, port
        self.queue_size = queue_size
        self.send_buffer_bytes = send_buffer_bytes
        self._page = page.encode("utf-8") if page is not None else None
        self._subscribers: set[_Subscriber] = set()
        self._closed: list[SubscriberStats] = []
        self._page_reports: dict[str, dict[str, Any]] = {}
        self._published = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> ResultServer:
        """Bind and serve in a background thread; returns once the port is open.

        Raises:
            InputError: the address cannot be bound (naming ``--serve``).
        """
        self._thread = threading.Thread(target=self._run, name="egostream-result-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise InputError(None, "--serve", f"cannot serve on {self.host}:{self.port}: {self._error}")
        return self

    def close(self) -> None:
        """Close every connection and stop the server (idempotent)."""
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> ResultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The subscribers' URL, ``ws://HOST:PORT/ws``."""
        return f"ws://{self._url_host}:{self.port}/ws"

    @property
    def page_url(self) -> str:
        """The live page, ``http://HOST:PORT/``."""
        return f"http://{self._url_host}:{self.port}/"

    @property
    def _url_host(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"[{host}]" if ":" in host else host

    # -- publishing -----------------------------------------------------------------------------------------------
    def publish(self, result: WindowResult) -> None:
        """Queue ``result`` for every subscriber connected now; never blocks (safe from any thread)."""
        record = result_to_record(result)
        binary = msgpack.packb(record, use_bin_type=True)
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(self._enqueue, binary, record)

    def _enqueue(self, binary: bytes, record: dict[str, Any]) -> None:
        self._published += 1
        text: str | None = None
        for subscriber in self._subscribers:
            if subscriber.stats.format == "json":
                if text is None:
                    from egostream.stream.schema import json_safe

                    text = json.dumps(json_safe(record), separators=(",", ":"), allow_nan=False)
                message: Any = text
            else:
                message = binary
            subscriber.queue.put(message)
            subscriber.stats.skipped = subscriber.queue.dropped
            subscriber.wake.set()

    # -- introspection --------------------------------------------------------------------------------------------
    @property
    def published(self) -> int:
        """Windows handed to the subscribers so far."""
        return self._published

    def stats(self) -> list[SubscriberStats]:
        """Every subscriber so far (connected ones first), with its sent and skipped counts."""
        with self._lock:
            return [subscriber.stats for subscriber in self._subscribers] + list(self._closed)

    def page_reports(self) -> dict[str, dict[str, Any]]:
        """Subscriber address -> the last status report its (live page) client sent."""
        with self._lock:
            return dict(self._page_reports)

    # -- the loop -------------------------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            server = await serve(self._handle, self.host, self.port, process_request=self._http,
                                 max_size=2**20, compression=None)
        except OSError as error:
            self._error = error
            self._loop = None
            self._ready.set()
            return
        self.port = next(iter(server.sockets)).getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped.wait()
            server.close()

    def _http(self, connection: Any, request: Any) -> Any:
        """Plain HTTP on the same port: the live page at ``/``; WebSocket upgrades only on ``/ws``."""
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = urlsplit(request.path).path
        if path == "/ws":
            return None
        if path in ("/", "/index.html") and self._page is not None:
            headers = Headers([("Content-Type", "text/html; charset=utf-8"),
                               ("Content-Length", str(len(self._page))), ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, self._page)
        return connection.respond(404, "not found: the live page is /, the WebSocket /ws\n")

    async def _handle(self, connection: Any) -> None:
        query = parse_qs(urlsplit(connection.request.path).query)
        fmt = "json" if query.get("format", ["msgpack"])[0] == "json" else "msgpack"
        raw = connection.transport.get_extra_info("socket")
        if raw is not None:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        peer = "%s:%s" % connection.remote_address[:2]
        subscriber = _Subscriber(SubscriberStats(peer, fmt), BoundedQueue(self.queue_size, OverflowPolicy.DROP_OLDEST))
        with self._lock:
            self._subscribers.add(subscriber)
        sender = asyncio.create_task(self._send(connection, subscriber))
        try:
            async for message in connection:  # status reports of live pages; anything else is ignored
                self._note(peer, message)
        except Exception:  # noqa: BLE001 - a broken connection ends this subscriber only
            pass
        finally:
            sender.cancel()
            with self._lock:
                self._subscribers.discard(subscriber)
                self._closed.append(subscriber.stats)

    def _note(self, peer: str, message: Any) -> None:
        if not isinstance(message, str):
            return
        try:
            report = json.loads(message)
        except ValueError:
            return
        if isinstance(report, dict) and report.get("page") == "status":
            with self._lock:
                self._page_reports[peer] = report

    @staticmethod
    async def _send(connection: Any, subscriber: _Subscriber) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await subscriber.wake.wait()
                subscriber.wake.clear()
                while message := subscriber.queue.get_batch(1, timeout=0):
                    await connection.send(message[0])
                    subscriber.stats.sent += 1
        except ConnectionClosed:
            pass
