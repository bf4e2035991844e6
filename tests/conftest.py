"""Shared pytest fixtures. Tests that need a Ray cluster use the one ``ray_cluster`` fixture defined here; the kernels'
backend fixtures (``kernel_backend``, ``device_backend``) come from the plugin ``tests.kernels.device_backends``, the
real synthetic stream of the report and server tests (``synthetic_stream``) from ``tests.report.synthetic_stream``."""
from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.kernels.device_backends", "tests.report.synthetic_stream"]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRayCluster:
    """A head and worker nodes started with ``ray start`` on this machine, one CPU each (small object stores).

    Every node runs in its own process group, so a worker is "killed" by signalling exactly its group, and teardown
    stops exactly the processes this fixture started (``ray stop`` would also stop other Ray instances on the
    machine).
    """

    OBJECT_STORE_BYTES = 100 * 1024 * 1024

    def __init__(self) -> None:
        self.temp_dir = Path(tempfile.mkdtemp(prefix="egray", dir="/tmp"))
        self.address = f"127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT),
                                                                              os.environ.get("PYTHONPATH")])),
                    "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        self.groups: list[int] = []
        self.head = self._start(["--head", "--port", self.address.rsplit(":", 1)[1], "--include-dashboard=false",
                                 "--temp-dir", str(self.temp_dir)])
        self.workers = [self.add_worker()]

    def _start(self, arguments: list[str]) -> int:
        command = [str(_RAY), "start", "--num-cpus", "1", "--object-store-memory", str(self.OBJECT_STORE_BYTES),
                   "--disable-usage-stats", *arguments]
        process = subprocess.Popen(command, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        _, stderr = process.communicate(timeout=60)
        self.groups.append(process.pid)
        if process.returncode != 0:
            raise RuntimeError(f"ray start failed: {stderr.decode(errors='replace')[-2000:]}")
        return process.pid

    def add_worker(self) -> int:
        """Start one more worker node; returns its process group id."""
        return self._start(["--address", self.address])

    def kill_group(self, group: int) -> None:
        """SIGKILL every process of one node (as a crashed machine would vanish)."""
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        for group in reversed(self.groups):
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                continue
        time.sleep(1.0)
        for group in self.groups:
            self.kill_group(group)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalRayCluster]:
    """The one shared local two-node Ray cluster, with this test process connected as its driver."""
    import ray

    cluster = LocalRayCluster()
    try:
        ray.init(address=cluster.address, log_to_driver=False, namespace="egostream-tests")
        yield cluster
    finally:
        ray.shutdown()
        cluster.stop()
