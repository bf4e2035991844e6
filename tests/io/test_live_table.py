"""The live tables: every column's text for a window with every readout and for one with none (hand-written
expectations), the console-fitted widths, and ``run``'s stage view with the source counters and the latest action."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from rich.console import Console

from egostream.actors.pipeline import StreamReport
from egostream.io.live_table import (ACTION, ATTENTION, BEST_MOMENT, FLAGS, LATENCY, MOMENT_COUNTS,
                                     OSCC_STATE, REPLAY_COLUMNS, TIME, Column, next_actions_cell, pnr_cell,
                                     stage_table, truth_column, window_table)
from egostream.stream.schema import WindowResult
from tests.stream.test_schema import full_result

FULL = full_result(3)
EMPTY = dataclasses.replace(full_result(4), ar=None, lta=None, oscc=None, pnr=None, mq=None, latency_ms={},
                            filled=False)


def _text(renderable: object, width: int = 200) -> str:
    console = Console(width=width, record=True)
    console.print(renderable)
    return console.export_text()


def _cells(columns: tuple[Column, ...], result: WindowResult) -> list[str]:
    return [column.cell(result) for column in columns]


def test_replay_columns_of_a_full_and_an_empty_window() -> None:
    assert [column.header for column in REPLAY_COLUMNS] == [
        "#", "t (s)", "AR (verb noun)", "LTA next", "OSCC", "PNR (s)", "MQ final/prov.", "ms"]
    # AR cut/tomato; LTA top-1 cut tomato twice; OSCC p = 0.618; PNR 60.2 s; MQ one final and one provisional
    # moment, the first labelled '"quoted, label"'; total latency 3.33 ms
    assert _cells(REPLAY_COLUMNS, FULL) == ["3", "64.1", "cut tomato", "cut tomato, cut tomato", "0.62", "60.20",
                                            '1/1 "quoted, label"', "3"]
    assert _cells(REPLAY_COLUMNS, EMPTY) == ["4", "64.1", "-", "-", "-", "-", "-", "0"]
    no_moments = dataclasses.replace(FULL, mq=dataclasses.replace(FULL.mq, moments=()))
    assert MOMENT_COUNTS.cell(no_moments) == "0/0 "


def test_demo_style_columns() -> None:
    assert TIME.cell(dataclasses.replace(FULL, time_s=1234.56)) == "1234.6"
    assert next_actions_cell(" → ")(FULL) == "cut tomato → cut tomato"
    assert next_actions_cell("; ", count=1)(FULL) == "cut tomato"
    assert OSCC_STATE.cell(FULL) == "yes 0.62"
    assert OSCC_STATE.cell(dataclasses.replace(FULL, oscc=dataclasses.replace(FULL.oscc, state_change=False))) == \
        "no 0.62"
    assert pnr_cell(1)(FULL) == "60.2" and pnr_cell(3)(FULL) == "60.200"
    # the best moment spans 1.5-9.25 s and is final; the second one (provisional) is not shown
    assert BEST_MOMENT.cell(FULL) == '"quoted, label" 2-9 s'
    provisional = dataclasses.replace(FULL.mq.moments[0], final=False)
    assert BEST_MOMENT.cell(dataclasses.replace(FULL, mq=dataclasses.replace(FULL.mq, moments=(provisional,)))) == \
        '"quoted, label" 2-9 s?'
    assert [ACTION.cell(EMPTY), OSCC_STATE.cell(EMPTY), BEST_MOMENT.cell(EMPTY)] == ["-", "-", "-"]


def test_truth_column_marks_hits_and_misses_of_the_ar_span() -> None:
    spans: list[tuple[float, float]] = []

    def truth_of(verb: int, noun: int):
        def lookup(start_s: float, end_s: float):
            spans.append((start_s, end_s))
            return SimpleNamespace(verb=verb, noun=noun, name="cut tomato")
        return lookup

    assert truth_column(truth_of(7, 411)).cell(FULL) == "[green]✓[/] cut tomato"  # AR's best: verb 7, noun 411
    assert truth_column(truth_of(2, 411)).cell(FULL) == "[red]✗[/] cut tomato"
    assert spans == [(56.1, 64.1)] * 2  # the AR span of the window
    assert truth_column(lambda start_s, end_s: None).cell(FULL) == "-"
    assert truth_column(truth_of(7, 411)).cell(EMPTY) == "-"


def test_latency_attention_and_flag_columns() -> None:
    assert LATENCY.cell(FULL) == "engine 1.2 ar 0.1 total 3.3" and LATENCY.cell(EMPTY) == "-"
    translated = dataclasses.replace(FULL, attention={"oscc": 0.25, "lta": 0.75})
    assert ATTENTION.cell(translated) == "lta 75% oscc 25%" and ATTENTION.cell(FULL) == "-"
    assert FLAGS.cell(FULL) == "filled" and FLAGS.cell(EMPTY) == "-"
    assert FLAGS.cell(dataclasses.replace(FULL, discontinuity=True)) == "filled disc."


def test_an_expanding_table_folds_and_a_fitted_one_shares_the_console_width() -> None:
    expanding = window_table([FULL, EMPTY], REPLAY_COLUMNS, "replay")
    assert expanding.expand and expanding.row_count == 2
    assert {column.overflow for column in expanding.columns} == {"fold"}
    columns = (Column("t", TIME.cell, 5), ACTION, BEST_MOMENT, Column("OSCC", OSCC_STATE.cell, 8))
    fitted = window_table([FULL], columns, "demo", caption="so far", console_width=60)
    # 60 characters less the fixed 5 + 8 and the 3 * 4 + 1 border characters, shared by two columns
    assert [column.width for column in fitted.columns] == [5, (60 - 13 - 13) // 2, (60 - 13 - 13) // 2, 8]
    assert {column.overflow for column in fitted.columns} == {"ellipsis"} and not fitted.expand
    narrow = window_table([FULL], columns, "demo", console_width=10)
    assert [column.width for column in narrow.columns] == [5, 9, 9, 8]  # never under 9 characters
    wide = window_table([FULL], columns, "demo", console_width=1000)
    assert [column.width for column in wide.columns] == [5, 40, 40, 8]  # nor over 40
    text = _text(fitted)
    assert "cut tomato" in text and "so far" in text and "yes 0.62" in text


def test_the_stage_table_shows_the_source_counters():
    report = StreamReport("cam", source={"corrupt_frames": 7, "skipped_packets": 2, "skipped_frames": 5,
                                         "discontinuities": 1, "untimed": 3, "reconnects": 4})
    text = " ".join(_text(stage_table(report, None, 16 / 30)).split())  # the caption wraps at the table's width
    assert ("source: corrupt frames 7 skipped packets 2 skipped frames 5 discontinuities 1 untimed 3 "
            "reconnects 4") in text


def test_the_stage_table_shows_latency_counts_and_the_latest_action() -> None:
    report = StreamReport("cam", windows=12, dropped=2, rows=40, results=9, wall_s=4.0,
                          latency_ms={"engine": {"p50_ms": 10.0, "p95_ms": 20.5, "p99_ms": 30.25, "count": 9}})
    table = stage_table(report, FULL, 0.5)
    assert table.title == "egostream run: cam" and table.row_count == 1
    text = " ".join(_text(table).split())
    assert "│ engine │ 10.0 │ 20.5 │ 30.2 │ 9 │" in text  # 30.25 rounds half to even
    # 40 rows in 4 s: fps 10.0; 40 rows of 0.5 s in 4 s: 5.00 x real time; AR's best verb 0.7, noun 0.5
    assert ("windows 12 dropped 2 results 9 fps 10.0 x-real-time 5.00 restarts 0 t=64.1 s action: cut (0.70) "
            "tomato (0.50)") in text
    assert "source:" not in text and "action" not in " ".join(_text(stage_table(report, EMPTY, 0.5)).split())
