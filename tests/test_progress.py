"""Progress: plain lines with counts and time left when not on a terminal, a tqdm bar on one, nothing when quiet."""

from __future__ import annotations

import io

from loaderbench.progress import Progress, task


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_tenth_with_time_left() -> None:
    out = io.StringIO()
    progress = Progress(stream=out)
    with progress.task("writing", 20, "images") as done:
        for _ in range(20):
            done.advance()
    lines = out.getvalue().splitlines()
    assert "writing: 0/20 images" in lines[0]
    assert any("writing: 10/20 images (50%), about" in line and "left" in line for line in lines)
    assert "writing: 20/20 images in" in lines[-1]
    assert len(lines) == 1 + 9 + 1  # start, 9 tenths before the end, end


def test_a_bar_on_a_terminal_and_messages_above_it() -> None:
    out = _Terminal()
    progress = Progress(stream=out)
    with progress.task("track getitem", 4, "formats") as done:
        progress("a message while the bar is drawn")
        done.advance(4)
    text = out.getvalue()
    assert "track getitem" in text and "4/4" in text and "a message while the bar is drawn" in text


def test_quiet_prints_nothing() -> None:
    out = _Terminal()
    progress = Progress(quiet=True, stream=out)
    with progress.task("x", 3) as done:
        done.advance(3)
    progress("hidden")
    assert out.getvalue() == ""


def test_task_with_a_plain_callable_or_none() -> None:
    said: list[str] = []
    with task(said.append, "reading", 2, "blocks") as done:
        done.advance(2)
    assert said[0] == "reading: 0/2 blocks" and said[-1].startswith("reading: 2/2 blocks in")
    with task(None, "silent", 5) as done:
        done.advance(5)
        assert done.done == 5
