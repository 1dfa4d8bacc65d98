"""A dependency-free progress bar with rate and ETA."""

import sys
import time

from digan_tf.utils import cpp_logs


def _clock(seconds):
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + "%02d:%02d" % divmod(rest, 60)


class ProgressBar:
    """Prints `desc: 45%|####      | 90/200 videos [00:12<00:15, 7.3
    videos/s] extra` to stderr. On a terminal the line is redrawn in place
    at most 10 times a second; in a log file one line is written every
    `log_interval` seconds, so long jobs do not flood their logs.

    Args:
        total: int or None, units of work expected.
        unit: str, what is counted ("videos", "img").
        description: str, label in front of the bar.
        initial: int, units already done (resumed work); excluded from the
            rate.
    """

    def __init__(self, total, unit, description="", initial=0,
                 stream=None, log_interval=30.0):
        self.total = total
        self.unit = unit
        self.description = description
        self.count = initial
        self._initial = initial
        self._stream = stream or sys.stderr
        self._interactive = (cpp_logs.stderr_is_terminal()
                             if self._stream is sys.stderr else
                             getattr(self._stream, "isatty", lambda: False)())
        self._log_interval = log_interval
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn_count = None
        self.extra = ""

    def rate(self):
        """Units per second since the bar started (resumed units excluded)."""
        elapsed = time.monotonic() - self._start
        return (self.count - self._initial) / elapsed if elapsed > 0 else 0.0

    def update(self, amount=1, extra=None):
        self.count += amount
        if extra is not None:
            self.extra = extra
        now = time.monotonic()
        interval = 0.1 if self._interactive else self._log_interval
        if now - self._last_draw >= interval:
            self._draw(now)

    def close(self):
        if self._interactive or self._drawn_count != self.count:
            self._draw(time.monotonic())
        if self._interactive:
            self._stream.write("\n")
        self._stream.flush()

    def line(self, now=None):
        """The current text of the bar."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._start
        rate = self.rate()
        parts = [f"{self.description}: " if self.description else ""]
        if self.total:
            fraction = min(self.count / self.total, 1.0)
            filled = int(fraction * 20)
            remaining = (self.total - self.count) / rate if rate else 0.0
            parts.append(
                f"{fraction:4.0%}|{'#' * filled}{' ' * (20 - filled)}| "
                f"{self.count}/{self.total} {self.unit} "
                f"[{_clock(elapsed)}<{_clock(remaining)}, "
            )
        else:
            parts.append(f"{self.count} {self.unit} [{_clock(elapsed)}, ")
        parts.append(f"{rate:.1f} {self.unit}/s]")
        if self.extra:
            parts.append(f" {self.extra}")
        return "".join(parts)

    def _draw(self, now):
        self._last_draw = now
        self._drawn_count = self.count
        text = self.line(now)
        if self._interactive:
            self._stream.write("\r" + text + "\x1b[K")
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
