"""Headless Chromium for the page tests (the Debian package ``chromium``; ``.ci/run`` installs it).

Every launch gets a fresh profile and the flags that keep it quiet and offline (no background networking, no
component updates, no sync; every host name resolves to nothing, so a page that needs the network fails).
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["chromium_binary", "require_chromium", "needs_chromium", "MISSING", "PageLoad", "load_page", "screenshot", "launch", "FLAGS"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
WINDOW = (1400, 1200)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


MISSING = "headless Chromium is not installed (apt-get install -y chromium; .ci/run installs it)"


def require_chromium() -> str:
    """The Chromium binary, or a skip that says how to get one."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip(MISSING)
    return binary


#: Marks of a page test: ``browser``, and skipped (before its fixtures are built) when Chromium is missing.
needs_chromium = [pytest.mark.browser, pytest.mark.skipif(chromium_binary() is None, reason=MISSING)]


def launch(url: str, *extra: str, window: tuple[int, int] = WINDOW) -> tuple[list[str], str]:
    """The command line of one headless run on ``url`` with a fresh profile (returned so the caller removes it)."""
    profile = tempfile.mkdtemp(prefix="egostream-chromium-")
    return [require_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
            "--enable-logging=stderr", "--v=0", *extra, url], profile


@dataclass(frozen=True)
class PageLoad:
    """What a page left in its DOM after loading: ``<body>`` data attributes, the DOM text, the console lines."""

    body: dict[str, str]
    dom: str
    console: list[str]

    def json(self, name: str) -> Any:
        return json.loads(self.body[name])


def _run(command: list[str], profile: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def load_page(url: str, budget_ms: int = 8000, timeout_s: float = 120) -> PageLoad:
    """Load ``url``, let its scripts run for ``budget_ms`` of virtual time, and read back the DOM."""
    command, profile = launch(url, f"--virtual-time-budget={budget_ms}", "--dump-dom")
    done = _run(command, profile, timeout_s)
    body_tag = re.search(r"<body([^>]*)>", done.stdout)
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body_tag.group(1))) if body_tag else {}
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return PageLoad({key: html.unescape(value) for key, value in attributes.items()}, done.stdout, console)


def screenshot(url: str, target: Path, budget_ms: int = 8000, timeout_s: float = 120) -> Path:
    """A PNG of the window after ``budget_ms`` of virtual time."""
    command, profile = launch(url, f"--virtual-time-budget={budget_ms}", f"--screenshot={target}")
    _run(command, profile, timeout_s)
    return target
