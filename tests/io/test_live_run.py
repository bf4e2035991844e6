"""run_live: the job's value comes back, its error is raised after it ended, every interrupt stops it and the first
is handed back once the job has ended; the live view is drawn at the end."""
from __future__ import annotations

import _thread
import threading

import pytest
from rich.console import Console
from rich.text import Text

from egostream.io.live_run import run_live


def test_the_value_comes_back_and_the_last_view_is_drawn() -> None:
    console = Console(width=40, record=True)
    views: list[int] = []

    def view() -> Text:
        views.append(len(views))
        return Text(f"view {len(views)}")

    run = run_live(lambda: 42, lambda: None, view, console)
    assert run.value == 42 and run.interrupt is None
    assert views and console.export_text().strip() == f"view {len(views)}"  # not transient: the last view stays


def test_a_transient_view_leaves_nothing_and_no_console_draws_nothing() -> None:
    console = Console(width=40, record=True)
    assert run_live(lambda: "done", lambda: None, lambda: Text("table"), console, transient=True).value == "done"
    assert console.export_text().strip() == ""
    drawn: list[str] = []
    assert run_live(lambda: 1, lambda: None, lambda: drawn.append("x") or Text(""), None).value == 1
    assert drawn == []


def test_the_jobs_error_is_raised_after_it_ended() -> None:
    def job() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_live(job, lambda: None, None, None)


def test_interrupts_stop_the_job_which_ends_before_the_first_interrupt_comes_back() -> None:
    stopped = threading.Event()
    stops: list[int] = []
    ended: list[bool] = []

    def stop() -> None:
        stops.append(len(stops))
        if len(stops) == 2:
            stopped.set()

    waiting = threading.Event()

    def view() -> Text:
        waiting.set()  # the main thread is in its waiting loop
        return Text("")

    def job() -> str:
        assert waiting.wait(10)
        _thread.interrupt_main()  # Ctrl-C, twice: the job goes on until it is asked to stop the second time
        while len(stops) < 1:
            threading.Event().wait(0.01)
        _thread.interrupt_main()
        assert stopped.wait(10)
        ended.append(True)
        return "stopped"

    run = run_live(job, stop, view, Console(width=40, record=True))
    assert run.value == "stopped" and ended == [True] and stops == [0, 1]
    assert isinstance(run.interrupt, KeyboardInterrupt)
