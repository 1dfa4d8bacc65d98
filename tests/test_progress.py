"""The progress bar: what logs and terminals see."""

import io

from digan_tf.utils.progress import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_mode_prints_the_first_and_the_final_line_once():
    stream = io.StringIO()
    bar = ProgressBar(4, "video", "prepare", stream=stream, log_interval=60)
    for _ in range(4):
        bar.update(1, extra="ok")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("prepare:  25%|#####")
    assert "4/4 video [" in lines[1] and "video/s] ok" in lines[1]


def test_terminal_mode_redraws_one_line_and_ends_it():
    stream = _Terminal()
    bar = ProgressBar(2, "frame", stream=stream)
    bar.update(2)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n")
    assert text.count("\n") == 1 and "2/2 frame" in text


def test_resumed_units_do_not_count_in_the_rate():
    bar = ProgressBar(100, "img", initial=90, stream=io.StringIO())
    assert bar.rate() == 0.0
    assert "90/100 img" in bar.line()
