"""A paced loopback sender of real MPEG-TS for the live-stream tests and ``benchmarks/live_latency.py``.

The video is encoded once with PyAV (H.264, one key frame a second) from a label sequence
(:mod:`egostream.io.synthetic_video`); each send re-muxes the packets into MPEG-TS with the timestamps a
:class:`SenderPlan` asks for (a start near the 2^33 wrap, loops that restart from zero, frames without a PTS),
drops a fraction of the 188-byte TS packets, and writes the rest to 127.0.0.1 at ``fps`` in real time over UDP
(7 TS packets a datagram), TCP or HTTP (the sender listens, the receiver connects). Every loop is bounded: the
sender stops after ``plan.frames`` frames, or after ``stop_after_s``, or when the receiver hangs up.
"""
from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from egostream.io.synthetic_video import render_frames

__all__ = ["EncodedVideo", "SenderPlan", "LoopbackSender", "encode_video", "TS_PACKET", "PTS_WRAP"]

TS_PACKET = 188
PTS_WRAP = 2 ** 33  # MPEG-TS timestamps are 33-bit counts of a 90 kHz clock
_TICKS_PER_S = 90_000
_DATAGRAM = 7 * TS_PACKET


@dataclass(frozen=True)
class EncodedVideo:
    """H.264 packets (Annex B bytes, presentation order = decode order: no B-frames) of ``len(packets)`` frames
    of ``size = (height, width)`` at ``fps``; ``keys[i]`` says whether packet i is a key frame."""

    packets: tuple[bytes, ...]
    keys: tuple[bool, ...]
    size: tuple[int, int]
    fps: float


def encode_video(labels: Sequence[int], num_classes: int, size: tuple[int, int], fps: float = 30.0,
                 gop: int = 30, crf: int = 18) -> EncodedVideo:
    """Encode one frame per label (synthetic look of :mod:`egostream.io.synthetic_video`) with libx264 at
    constant quality ``crf``, a key frame every ``gop`` frames."""
    import av

    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = size[1], size[0]
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, round(fps))
    codec.framerate = Fraction(round(fps), 1)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "bf": "0", "crf": str(crf),
                     "repeat-headers": "1"}
    packets: list[bytes] = []
    keys: list[bool] = []
    for index, image in enumerate(render_frames(labels, num_classes, size)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        for packet in codec.encode(frame):
            packets.append(bytes(packet))
            keys.append(bool(packet.is_keyframe))
    for packet in codec.encode(None):
        packets.append(bytes(packet))
        keys.append(bool(packet.is_keyframe))
    return EncodedVideo(tuple(packets), tuple(keys), size, fps)


@dataclass(frozen=True)
class SenderPlan:
    """What one send does.

    ``frames`` frames are sent (the video's packets in a loop); frame i carries PTS ``start_pts + (i mod
    loop_frames) * 90000 / fps`` in 90 kHz ticks, written modulo 2^33 as MPEG-TS does (``loop_frames`` None: no
    loop, so a ``start_pts`` just below 2^33 wraps mid-stream). Frames ``i`` with ``no_pts[0] <= i < no_pts[1]``
    are muxed without PTS/DTS. A fraction ``loss`` of the TS packets (seeded by ``seed``) is never sent. The
    sender waits ``delay_s`` before its first byte and stops after ``stop_after_s`` seconds of sending, if given.
    """

    frames: int
    start_pts: int = 0
    loop_frames: int | None = None
    no_pts: tuple[int, int] = (0, 0)
    loss: float = 0.0
    seed: int = 0
    delay_s: float = 0.0
    stop_after_s: float | None = None


class _Chunks(io.RawIOBase):
    """A write-only file object collecting what the muxer writes."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data.extend(data)
        return len(data)


class LoopbackSender:
    """Sends ``video`` as MPEG-TS to a loopback ``transport`` (``"udp"``, ``"tcp"`` or ``"http"``) on ``port`` as
    ``plan`` says, in a daemon thread (:meth:`start`, :meth:`join`). ``sent_at[i]`` is the UNIX time frame i's last
    byte left (the frame's "glass" time); ``dropped_ts_packets`` counts the TS packets not sent."""

    def __init__(self, video: EncodedVideo, port: int, plan: SenderPlan, transport: str = "udp") -> None:
        if transport not in ("udp", "tcp", "http"):
            raise ValueError(f"unknown transport {transport!r}")
        self.video, self.port, self.plan, self.transport = video, port, plan, transport
        self.sent_at: list[float] = []
        self.dropped_ts_packets = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="loopback-sender", daemon=True)
        self._listener: socket.socket | None = None
        if transport in ("tcp", "http"):  # listen now, so a receiver that connects early is queued
            self._listener = socket.create_server(("127.0.0.1", port))
            self._listener.settimeout(30.0)

    @property
    def url(self) -> str:
        """The URL a receiver opens."""
        if self.transport == "udp":
            return f"udp://127.0.0.1:{self.port}"
        if self.transport == "tcp":
            return f"tcp://127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}/live.ts"

    def start(self) -> LoopbackSender:
        self._thread.start()
        return self

    def join(self, timeout_s: float = 60.0) -> None:
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            time.sleep(self.plan.delay_s)
            if self.transport == "udp":
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    self._send(lambda data: self._send_datagrams(sock, data))
                return
            assert self._listener is not None
            with self._listener:
                connection, _ = self._listener.accept()
            with connection:
                if self.transport == "http":
                    connection.recv(65536)  # the request; any path gets the stream
                    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/mp2t\r\n\r\n")
                try:
                    self._send(connection.sendall)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the receiver hung up
        except BaseException as error:  # raised by join()
            self.error = error

    def _send_datagrams(self, sock: socket.socket, data: bytes) -> None:
        for offset in range(0, len(data), _DATAGRAM):
            sock.sendto(data[offset:offset + _DATAGRAM], ("127.0.0.1", self.port))

    def _send(self, write: object) -> None:
        import av

        plan, video = self.plan, self.video
        rng = np.random.default_rng(plan.seed)
        sink = _Chunks()
        ticks_per_frame = round(_TICKS_PER_S / video.fps)
        self._first_pts: int | None = None
        with av.open(sink, "w", format="mpegts", options={"flush_packets": "1"}) as container:
            stream = container.add_stream("h264", rate=Fraction(round(video.fps), 1))
            stream.height, stream.width = video.size
            stream.time_base = Fraction(1, _TICKS_PER_S)
            started = time.monotonic()
            for index in range(plan.frames):
                if plan.stop_after_s is not None and time.monotonic() - started >= plan.stop_after_s:
                    break
                source = index % len(video.packets)
                packet = av.Packet(video.packets[source])
                packet.pts = packet.dts = index * ticks_per_frame  # the muxer needs increasing times: see _retime
                packet.time_base = stream.time_base
                packet.is_keyframe = video.keys[source]
                packet.stream = stream
                container.mux(packet)
                complete = len(sink.data) - len(sink.data) % TS_PACKET
                payload, sink.data = sink.data[:complete], sink.data[complete:]
                self._retime(payload, ticks_per_frame)
                write(self._lose(bytes(payload), rng))  # type: ignore[operator]
                self.sent_at.append(time.time())
                time.sleep(max(0.0, started + (index + 1) / video.fps - time.monotonic()))

    def _retime(self, payload: bytearray, ticks_per_frame: int) -> None:
        """Rewrite the PTS/DTS of every video PES header in ``payload`` (whole TS packets) as the plan says: frame
        i is found from the muxer's own PTS (i ticks of a frame after the first), then gets the plan's PTS modulo
        2^33 (DTS = PTS: no B-frames), or no timestamps at all (the header's 5/10 bytes become stuffing)."""
        plan = self.plan
        for offset in range(0, len(payload), TS_PACKET):
            if payload[offset] != 0x47 or not payload[offset + 1] & 0x40:  # sync byte; payload unit start
                continue
            control = payload[offset + 3] >> 4 & 3
            start = offset + 4 + (1 + payload[offset + 4] if control & 2 else 0)
            if not control & 1 or payload[start:start + 3] != b"\0\0\1" or payload[start + 3] & 0xF0 != 0xE0:
                continue
            flags = payload[start + 7] >> 6
            if not flags & 2:
                continue
            muxed = _read_timestamp(payload, start + 9)
            if self._first_pts is None:
                self._first_pts = muxed
            index = round((muxed - self._first_pts) / ticks_per_frame)
            fields = 10 if flags == 3 else 5
            if plan.no_pts[0] <= index < plan.no_pts[1]:
                payload[start + 7] &= 0x3F
                payload[start + 9:start + 9 + fields] = b"\xff" * fields
                continue
            position = index % plan.loop_frames if plan.loop_frames else index
            pts = (plan.start_pts + position * ticks_per_frame) % PTS_WRAP
            _write_timestamp(payload, start + 9, pts, 0b0011 if flags == 3 else 0b0010)
            if flags == 3:
                _write_timestamp(payload, start + 14, pts, 0b0001)

    def _lose(self, payload: bytes, rng: np.random.Generator) -> bytes:
        if self.plan.loss <= 0:
            return payload
        count = len(payload) // TS_PACKET
        keep = rng.random(count) >= self.plan.loss
        self.dropped_ts_packets += int(count - keep.sum())
        return b"".join(payload[i * TS_PACKET:(i + 1) * TS_PACKET] for i in np.flatnonzero(keep))



def _read_timestamp(data: bytearray, at: int) -> int:
    """The 33-bit PES timestamp stored in the 5 bytes at ``at`` (ISO/IEC 13818-1, 2.4.3.7)."""
    return ((data[at] >> 1 & 7) << 30 | data[at + 1] << 22 | (data[at + 2] >> 1) << 15 | data[at + 3] << 7
            | data[at + 4] >> 1)


def _write_timestamp(data: bytearray, at: int, value: int, prefix: int) -> None:
    """Store the 33-bit ``value`` at ``at`` with the 4-bit ``prefix`` ('0010' PTS only, '0011' PTS, '0001' DTS)."""
    data[at] = prefix << 4 | (value >> 30 & 7) << 1 | 1
    data[at + 1] = value >> 22 & 0xFF
    data[at + 2] = (value >> 15 & 0x7F) << 1 | 1
    data[at + 3] = value >> 7 & 0xFF
    data[at + 4] = (value & 0x7F) << 1 | 1


def push_rtsp(url: str, video: EncodedVideo, transport: str = "tcp", connect_s: float = 60.0) -> int:
    """Publish ``video`` to an RTSP server at ``url`` (ANNOUNCE/RECORD, FFmpeg's RTSP muxer) over ``transport``,
    paced at its frame rate; retries the connection for ``connect_s`` seconds. Returns the frames sent.

    Run it in another process (``python -m tests.io.live_sender URL TRANSPORT``): a PyAV open with a timeout
    holds the GIL while it waits, so a sender thread of the receiving process would never run.
    """
    import av

    deadline = time.monotonic() + connect_s
    while True:
        try:
            container = av.open(url, "w", format="rtsp", options={"rtsp_transport": transport})
            break
        except av.error.ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    ticks_per_frame = round(_TICKS_PER_S / video.fps)
    with container:
        stream = container.add_stream("h264", rate=Fraction(round(video.fps), 1))
        stream.height, stream.width = video.size
        stream.time_base = Fraction(1, _TICKS_PER_S)
        started = time.monotonic()
        for index, data in enumerate(video.packets):
            packet = av.Packet(data)
            packet.pts = packet.dts = index * ticks_per_frame
            packet.time_base, packet.stream, packet.is_keyframe = stream.time_base, stream, video.keys[index]
            container.mux(packet)
            time.sleep(max(0.0, started + (index + 1) / video.fps - time.monotonic()))
    return len(video.packets)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.io.live_sender rtsp URL TRANSPORT`` publishes a 3 s clip over RTSP;
    ``python -m tests.io.live_sender udp PORT [--frames N] [--size WxH] [--loss F] [--delay-s S] [--clip-s S]`` sends
    a looped clip with continuous times as :class:`LoopbackSender` does, then prints ``{"frames_sent": ...,
    "dropped_ts_packets": ...}`` (a sender in its own process, like a real camera)."""
    import argparse
    import json

    from tests.io.video_factory import NUM_CLASSES, segment_labels

    parser = argparse.ArgumentParser(prog="python -m tests.io.live_sender")
    parser.add_argument("transport", choices=("rtsp", "udp"))
    parser.add_argument("target", help="RTSP URL, or UDP port on 127.0.0.1")
    parser.add_argument("rtsp_transport", nargs="?", default="tcp")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="64x48", help="WIDTHxHEIGHT")
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--clip-s", type=float, default=4.0)
    parser.add_argument("--crf", type=int, default=23)
    args = parser.parse_args(argv)
    width, height = (int(part) for part in args.size.lower().split("x"))
    clip = encode_video(segment_labels([30] * max(1, round(args.clip_s))), NUM_CLASSES, (height, width), crf=args.crf)
    if args.transport == "rtsp":
        push_rtsp(args.target, clip, args.rtsp_transport)
        return
    sender = LoopbackSender(clip, int(args.target), SenderPlan(frames=args.frames, loss=args.loss,
                                                               delay_s=args.delay_s)).start()
    sender.join(timeout_s=args.delay_s + args.frames / clip.fps + 60.0)
    print(json.dumps({"frames_sent": len(sender.sent_at), "dropped_ts_packets": sender.dropped_ts_packets}),
          flush=True)


if __name__ == "__main__":
    main()
