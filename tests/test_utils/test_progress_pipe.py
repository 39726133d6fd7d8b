"""A progress bar asked for on a pipe or a file: plain lines at every tenth, never a carriage return."""

import io
import re

import pytest

from rsretrieval.utils.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _counts(text: str) -> list[int]:
    return [int(m) for m in re.findall(r': (\d+)/\d+ \(', text)]


def test_a_pipe_gets_a_line_per_tenth_without_carriage_returns():
    stream = io.StringIO()
    progress = Progress(25, 'test: image batches', bar=True, stream=stream)
    for _ in range(25):
        progress.update()
    progress.close()
    text = stream.getvalue()
    assert '\r' not in text
    assert _counts(text) == [3, 5, 8, 10, 13, 15, 18, 20, 23, 25]
    assert (
        text.splitlines()[-1].startswith('test: image batches: 25/25 (100 %), ') and 'ETA' not in text.splitlines()[-1]
    )


def test_standard_output_redirected_gets_the_lines_too(capsys):
    progress = Progress(3, 'test: caption batches', bar=True)  # pytest's captured stdout is no terminal
    for _ in range(3):
        progress.update()
    progress.close()
    out = capsys.readouterr().out
    assert '\r' not in out and _counts(out) == [1, 2, 3]


def test_a_loop_left_early_ends_with_the_count_it_reached():
    stream = io.StringIO()
    progress = Progress(100, 'test: image batches', bar=True, stream=stream)
    for _ in range(37):
        progress.update()
    progress.close()
    progress.close()  # only once
    assert _counts(stream.getvalue()) == [10, 20, 30, 37]


@pytest.mark.parametrize('enabled', [True, False])
def test_a_terminal_still_gets_the_bar_and_other_ranks_nothing(enabled):
    stream = _Terminal()
    progress = Progress(4, 'test: image batches', bar=True, stream=stream, enabled=enabled)
    for _ in range(4):
        progress.update()
    progress.close()
    assert ('\r' in stream.getvalue()) is enabled and _counts(stream.getvalue()) == []
