"""The live tables of a stream (rich), one builder for every command that shows one.

* :func:`window_table`: the newest windows, one line each, in the :class:`Column` s the caller picks: ``replay
  --stream`` (:data:`REPLAY_COLUMNS`), the demo (with a ground-truth column, :func:`truth_column`), and the optional
  latency breakdown (:data:`LATENCY`), translation attention shares (:data:`ATTENTION`) and filled / discontinuity
  flags (:data:`FLAGS`).
* :func:`stage_table`: ``egostream run``'s view of one pipeline: per-stage latency percentiles, counts, the
  source's counters and the latest window's action.

A cell is a function of one :class:`~egostream.stream.schema.WindowResult`; ``-`` stands for a readout the window
does not have.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from rich.table import Table

from egostream.stream.schema import WindowResult

__all__ = ["Column", "window_table", "stage_table", "StageReport", "truth_column", "next_actions_cell",
           "pnr_cell", "TruthAction", "INDEX", "TIME", "ACTION", "OSCC_PROBABILITY", "OSCC_STATE", "MOMENT_COUNTS",
           "BEST_MOMENT", "TOTAL_LATENCY", "LATENCY", "ATTENTION", "FLAGS", "REPLAY_COLUMNS"]

Cell = Callable[[WindowResult], str]


@dataclass(frozen=True)
class Column:
    """A table column: its ``header``, the ``cell`` text of a window, and its ``width`` in characters when the table
    is fitted to a console width (``None``: a share of what the fixed columns leave; see :func:`window_table`)."""

    header: str
    cell: Cell
    width: int | None = None


def _action(result: WindowResult) -> str:
    """AR's best verb and noun."""
    if result.ar is None or not result.ar.verbs or not result.ar.nouns:
        return "-"
    return f"{result.ar.verbs[0].name} {result.ar.nouns[0].name}"


def next_actions_cell(separator: str, count: int = 2) -> Cell:
    """LTA's first ``count`` predicted actions (top-1 sequence), joined by ``separator``."""

    def cell(result: WindowResult) -> str:
        if result.lta is None:
            return "-"
        return separator.join(f"{step.verb.name} {step.noun.name}" for step in result.lta.top1[:count])

    return cell


def _oscc_probability(result: WindowResult) -> str:
    return f"{result.oscc.probability:.2f}" if result.oscc is not None else "-"


def _oscc_state(result: WindowResult) -> str:
    if result.oscc is None:
        return "-"
    return f"{'yes' if result.oscc.state_change else 'no'} {result.oscc.probability:.2f}"


def pnr_cell(decimals: int) -> Cell:
    """PNR's keyframe time in seconds, with ``decimals`` digits."""

    def cell(result: WindowResult) -> str:
        return f"{result.pnr.time_s:.{decimals}f}" if result.pnr is not None else "-"

    return cell


def _moment_counts(result: WindowResult) -> str:
    """MQ: final / provisional moment counts, then the best moment's class."""
    if not result.mq:
        return "-"
    final = sum(moment.final for moment in result.mq.moments)
    best = result.mq.moments[0].label.name if result.mq.moments else ""
    return f"{final}/{len(result.mq.moments) - final} {best}"


def _best_moment(result: WindowResult) -> str:
    """MQ's best moment: class, span in whole seconds, ``?`` when provisional."""
    if result.mq is None or not result.mq.moments:
        return "-"
    best = result.mq.moments[0]
    return f"{best.label.name} {best.start_s:.0f}-{best.end_s:.0f} s{'' if best.final else '?'}"


def _latency(result: WindowResult) -> str:
    """Every entry of ``latency_ms`` (milliseconds, one decimal), in the window's order."""
    return " ".join(f"{stage} {ms:.1f}" for stage, ms in result.latency_ms.items()) or "-"


def _attention(result: WindowResult) -> str:
    """A translation model's attention shares per source task (percent), largest first."""
    shares = sorted(result.attention.items(), key=lambda item: -item[1])
    return " ".join(f"{task} {100 * share:.0f}%" for task, share in shares) or "-"


def _flags(result: WindowResult) -> str:
    """``filled`` (a refilled row since the last window) and ``disc.`` (a timestamp discontinuity in the window)."""
    return " ".join(name for name, on in (("filled", result.filled), ("disc.", result.discontinuity)) if on) or "-"


INDEX = Column("#", lambda result: str(result.window_index))
TIME = Column("t (s)", lambda result: f"{result.time_s:.1f}")
ACTION = Column("AR (verb noun)", _action)
OSCC_PROBABILITY = Column("OSCC", _oscc_probability)
OSCC_STATE = Column("OSCC", _oscc_state, 8)
MOMENT_COUNTS = Column("MQ final/prov.", _moment_counts)
BEST_MOMENT = Column("moment (MQ; ?: provisional)", _best_moment)
TOTAL_LATENCY = Column("ms", lambda result: f"{result.latency_ms.get('total', 0.0):.0f}")
LATENCY = Column("latency ms", _latency)
ATTENTION = Column("attention", _attention)
FLAGS = Column("flags", _flags)

#: ``egostream replay --stream``: every task's best guess and the receive-to-emit milliseconds.
REPLAY_COLUMNS = (INDEX, TIME, ACTION, Column("LTA next", next_actions_cell(", ")), OSCC_PROBABILITY,
                  Column("PNR (s)", pnr_cell(2)), MOMENT_COUNTS, TOTAL_LATENCY)


class TruthAction(Protocol):
    """A ground-truth action: verb and noun ids and a name to show."""

    @property
    def verb(self) -> int: ...

    @property
    def noun(self) -> int: ...

    @property
    def name(self) -> str: ...


def truth_column(truth_of: Callable[[float, float], TruthAction | None], header: str = "truth") -> Column:
    """The ground truth of each window's AR span: ``truth_of(start_s, end_s)`` (seconds) gives the action there (or
    None), shown after a green check when AR's best verb and noun are its ids, else a red cross."""

    def cell(result: WindowResult) -> str:
        if result.ar is None or not result.ar.verbs or not result.ar.nouns:
            return "-"
        actual = truth_of(result.ar.span.start_s, result.ar.span.end_s)
        if actual is None:
            return "-"
        hit = (actual.verb, actual.noun) == (result.ar.verbs[0].id, result.ar.nouns[0].id)
        return f"{'[green]✓[/]' if hit else '[red]✗[/]'} {actual.name}"

    return Column(header, cell)


def window_table(results: Iterable[WindowResult], columns: Iterable[Column], title: str, *,
                 caption: str | None = None, console_width: int | None = None) -> Table:
    """One line per window of ``results`` in ``columns``.

    Without ``console_width`` the table expands to the console and long cells fold onto more lines. With it
    (characters), cells stay on one line: a column with a ``width`` gets that many characters, the others share
    what is left (9 to 40 characters each), and longer text is cut with an ellipsis.
    """
    columns = tuple(columns)
    if console_width is None:
        table = Table(title=title, caption=caption, expand=True)
        for column in columns:
            table.add_column(column.header, overflow="fold")
    else:
        fixed = sum(column.width for column in columns if column.width is not None)
        shared = sum(column.width is None for column in columns)
        borders = 3 * len(columns) + 1
        share = max(9, min(40, (console_width - fixed - borders) // max(shared, 1)))
        table = Table(title=title, caption=caption, header_style="bold", expand=False)
        for column in columns:
            table.add_column(column.header, width=column.width or share, no_wrap=True, overflow="ellipsis")
    for result in results:
        table.add_row(*(column.cell(result) for column in columns))
    return table


class StageReport(Protocol):
    """What :func:`stage_table` reads of a pipeline's report (:class:`egostream.actors.pipeline.StreamReport`)."""

    name: str
    windows: int
    dropped: int
    results: int
    restarts: Mapping[str, int]
    latency_ms: Mapping[str, Mapping[str, float | int]]
    source: Mapping[str, int]

    @property
    def fps(self) -> float: ...

    def x_real_time(self, row_period_s: float) -> float: ...


#: the source counters :func:`stage_table` shows, in order
_SOURCE_COUNTERS = (("corrupt frames", "corrupt_frames"), ("skipped packets", "skipped_packets"),
                    ("skipped frames", "skipped_frames"), ("discontinuities", "discontinuities"),
                    ("untimed", "untimed"), ("reconnects", "reconnects"))


def stage_table(report: StageReport, last: WindowResult | None, row_period_s: float) -> Table:
    """``egostream run``'s live view of one stream: a line per stage with its latency percentiles (ms) and item
    count; the caption has the counts, throughput (``row_period_s``: stream seconds per row), restarts, the source's
    counters (when it reports any) and the latest window's action with its scores."""
    table = Table(title=f"egostream run: {report.name}", show_header=True, header_style="bold")
    table.add_column("stage")
    for header in ("p50 ms", "p95 ms", "p99 ms", "items"):
        table.add_column(header, justify="right")
    for stage, summary in report.latency_ms.items():
        table.add_row(stage, *(f"{summary[key]:.1f}" for key in ("p50_ms", "p95_ms", "p99_ms")),
                      str(summary["count"]))
    caption = (f"windows {report.windows}  dropped {report.dropped}  results {report.results}  "
               f"fps {report.fps:.1f}  x-real-time {report.x_real_time(row_period_s):.2f}  restarts "
               f"{sum(report.restarts.values())}")
    if report.source:
        caption += "\nsource: " + "  ".join(f"{label} {report.source.get(key, 0)}" for label, key in _SOURCE_COUNTERS)
    if last is not None and last.ar is not None and last.ar.verbs and last.ar.nouns:
        verb, noun = last.ar.verbs[0], last.ar.nouns[0]
        caption += f"\nt={last.time_s:.1f} s  action: {verb.name} ({verb.score:.2f}) {noun.name} ({noun.score:.2f})"
    table.caption = caption
    return table
