"""Results for people: the timeline report (HTML page with plotly.js embedded, PNGs with matplotlib).

- :mod:`egostream.report.build`: ``egostream report`` (:func:`write_report`).
- :mod:`egostream.report.page`: the page, static or live (served by :mod:`egostream.io.result_server`).
- :mod:`egostream.report.figures`: the PNGs.
- :mod:`egostream.report.truth`: the Ego4D ground truth drawn under the tracks.
- :mod:`egostream.report.thumbnails`: video thumbnails for the video track.
"""
from __future__ import annotations

from egostream.report.build import ReportSummary, write_report
from egostream.report.page import build_page

__all__ = ["ReportSummary", "write_report", "build_page"]
