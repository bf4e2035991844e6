"""Ray processes started by a command die with it, even when the command is killed (SIGKILL).

``ray.init()`` ties the GCS server and raylet it starts to the driver (on Linux through ``PR_SET_PDEATHSIG``;
``ray/_private/services.py``, ``start_ray_process``), but the raylet's agent processes (dashboard agent, runtime-env
agent) outlive a killed driver for minutes. :class:`Reaper` is a small watcher process in its own session, started
before ``ray.init``: it records the driver's descendants that exist at its start (they are not Ray's and are left
alone), then once a second every new descendant (pid and start time). When the driver says it is done (a clean
``ray.shutdown()``), it exits; when the driver is gone without saying so (its end of the pipe closes), it sends
SIGTERM, then SIGKILL after ``grace_s``, to the recorded processes still alive. Linux only (it reads ``/proc``);
elsewhere :meth:`Reaper.start` returns ``None``.

Run as ``python -m egostream.actors.reaper DRIVER_PID PERIOD_S GRACE_S``; it writes one byte to stdout once it has
recorded the processes to leave alone.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Reaper"]

_PROC = Path("/proc")
_DONE = b"done\n"


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time in clock ticks) of every process now."""
    table: dict[int, tuple[int, str]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time of every descendant of ``root``."""
    table = _processes()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _signal_alive(recorded: dict[int, str], signum: int) -> int:
    """Send ``signum`` to the recorded processes that still run (same pid and start time); returns how many."""
    table = _processes()
    sent = 0
    for pid, started in recorded.items():
        if table.get(pid, (0, ""))[1] == started:
            try:
                os.kill(pid, signum)
                sent += 1
            except OSError:
                pass
    return sent


def _watch(driver: int, period_s: float, grace_s: float) -> None:
    leave_alone = _descendants(driver)
    leave_alone[os.getpid()] = ""
    sys.stdout.buffer.write(b"r")
    sys.stdout.buffer.flush()
    recorded: dict[int, str] = {}
    message = b""
    while True:
        readable, _, _ = select.select([sys.stdin.buffer], [], [], period_s)
        if readable:
            chunk = os.read(sys.stdin.fileno(), 64)
            message += chunk
            if message.startswith(_DONE):
                return
            if not chunk:
                break
        recorded.update({pid: started for pid, started in _descendants(driver).items() if pid not in leave_alone})
    if _signal_alive(recorded, signal.SIGTERM):
        time.sleep(grace_s)
        _signal_alive(recorded, signal.SIGKILL)


class Reaper:
    """The driver's handle on its watcher process (see the module doc)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @classmethod
    def start(cls, period_s: float = 1.0, grace_s: float = 3.0) -> Reaper | None:
        """Start a watcher of this process; returns once it is watching (``None`` without ``/proc``)."""
        if not (_PROC / "self" / "stat").exists():
            return None
        process = subprocess.Popen([sys.executable, "-m", "egostream.actors.reaper", str(os.getpid()), str(period_s),
                                    str(grace_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        assert process.stdout is not None
        process.stdout.read(1)
        return cls(process)

    def release(self) -> None:
        """Ray was shut down cleanly: the watcher exits without signalling anything."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(_DONE)
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # it must outlive the driver's Ctrl-C to clean up after it
    _watch(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
