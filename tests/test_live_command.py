"""``rolloutlab live`` as a workflow (``workflows.live``): bad options are refused naming the
flag before anything starts, and a run — here on the in-memory backend, in real time at a
high time scale — writes its table and says what it waits for while it waits, on a
terminal (rich's progress) and on a log (a line per change)."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from rolloutlab.errors import InputError, exit_status
from rolloutlab.live.memory import MemoryBackend
from rolloutlab.results.table import read_results
from rolloutlab.scenarios.schema import bundled_scenario, load_scenario
from rolloutlab.strategies import load_strategy
from rolloutlab.workflows.live import LiveSettings, run_live_command


@pytest.fixture(scope="module")
def standard():
    return load_scenario(bundled_scenario("standard"))


@pytest.mark.parametrize(("changes", "flag"), [
    (dict(backend="docker"), "--backend"),
    (dict(release="mixed"), "--release"),
    (dict(metrics="scrape"), "--metrics"),
    (dict(time_scale=float("inf")), "--time-scale"),
    (dict(url="http://example.com/"), "--url"),
], ids=["unknown backend", "unknown release", "scrape without kube", "infinite time scale", "a remote url"])
def test_bad_options_are_bad_input_naming_the_flag(standard, tmp_path, changes, flag):
    """Each bad option is an InputError (exit 2) naming its flag; nothing is written."""
    settings = LiveSettings(out_dir=tmp_path / "out", **changes)
    with pytest.raises(InputError) as caught:
        run_live_command(standard, load_strategy("rolling"), settings, out=Console(file=io.StringIO()),
                         err=Console(file=io.StringIO()))
    assert str(caught.value).startswith(flag) and exit_status(caught.value) == 2
    assert not (tmp_path / "out").exists()


def _run(standard, tmp_path, err: Console):
    out = Console(file=io.StringIO(), width=100)
    backend = MemoryBackend(clock=time.time, sleep=time.sleep)  # 1,800 scenario s in 3 s at x600

    def open_backend(*_args, **_kwargs):
        return backend

    settings = LiveSettings(time_scale=600.0, release="good", max_rps=5.0, max_minutes=1.0,
                            out_dir=tmp_path / "out", report=False)
    code = run_live_command(standard, load_strategy("rolling"), settings, out=out, err=err,
                            open_backend=open_backend)
    return code, out.file.getvalue()


def test_a_live_run_writes_its_row_and_shows_its_waits_on_a_log(standard, tmp_path):
    """Not on a terminal: a line per wait, the window's end included, and the row in results.csv."""
    err = Console(file=io.StringIO(), width=100)
    code, printed = _run(standard, tmp_path, err)
    log = err.file.getvalue()
    assert code == 0
    assert "waiting for rollout: step 1" in log
    assert "waiting for the end of the scenario's window (the rollout was promoted at t=" in log
    table = read_results(tmp_path / "out" / "results.csv")
    assert list(table["outcome"]) == ["promoted"] and list(table["source"]) == ["memory"]
    assert "failed_requests" in printed and (tmp_path / "out" / "timelines.json").exists()


def test_on_a_terminal_the_waits_are_a_progress_bar(standard, tmp_path):
    """On a terminal the wait is rich's progress line, with the scenario time of the window."""
    err = Console(file=io.StringIO(), width=160, force_terminal=True)
    code, _ = _run(standard, tmp_path, err)
    shown = err.file.getvalue()
    assert code == 0
    assert "end of the scenario's window" in shown and "of 1800s" in shown
    assert "waiting for" not in shown  # the log's lines are not printed on a terminal


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "docker"], "--backend: must be one of local, kube"),
    (["--metrics", "scrape"], "--metrics: must be loadgen, or scrape with --backend kube"),
    (["-s", "nope.yaml"], "nope.yaml"),
], ids=["unknown backend", "scrape on the local backend", "a strategy file that does not exist"])
def test_the_command_exits_2_with_one_line_on_bad_input(tmp_path, args, message):
    """`rolloutlab live` with bad input prints one line naming the option or file and exits 2."""
    from typer.testing import CliRunner

    from rolloutlab import cli

    result = CliRunner().invoke(cli.app, ["live", "standard", "-s", "rolling", "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
