"""``egostream.subscribe(url)``: the window results a result server (:mod:`egostream.io.result_server`) publishes,
as an iterator of :class:`~egostream.stream.schema.WindowResult`, in publication order.

A subscriber receives the windows published after it connected. With ``reconnect=True`` a lost connection is
opened again (every ``retry_s`` seconds, at most ``retries`` times in a row) and the iteration goes on at the live
edge; otherwise the iteration ends when the server closes the connection.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

from egostream.errors import InputError
from egostream.stream.schema import WindowResult, decode_payload, result_from_record

__all__ = ["subscribe"]


def subscribe(url: str, *, reconnect: bool = False, retry_s: float = 0.5, retries: int = 20,
              open_timeout_s: float = 10.0) -> Iterator[WindowResult]:
    """Iterate over the windows published at ``url`` (``ws://HOST:PORT/ws``).

    Raises:
        InputError: naming ``url`` when it cannot be reached (after the retries, with ``reconnect``) or a message is
            not a window result.
    """
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
    from websockets.sync.client import connect

    failures = 0
    while True:
        try:
            connection = connect(url, open_timeout=open_timeout_s, max_size=2**24, compression=None)
        except InvalidURI as error:
            raise InputError(url, "url", str(error)) from None
        except (OSError, InvalidHandshake, TimeoutError) as error:
            failures += 1
            if not reconnect or failures > retries:
                raise InputError(url, "url", f"cannot subscribe: {error}") from None
            time.sleep(retry_s)
            continue
        failures = 0
        try:
            with connection:
                for message in connection:
                    if isinstance(message, bytes):
                        yield decode_payload(message, source=url)
                    else:
                        yield result_from_record(json.loads(message), source=url)
        except ConnectionClosed:
            pass
        if not reconnect:
            return
        time.sleep(retry_s)
