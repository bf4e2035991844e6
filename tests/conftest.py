"""Shared pytest fixtures. Tests that need a Ray cluster use the one ``ray_cluster`` fixture defined here."""
from __future__ import annotations

import os

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
