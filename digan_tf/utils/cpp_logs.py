"""Hides TensorFlow's C++ log lines in our command-line tools.

TensorFlow 2.21 logs from C++ through absl before (and regardless of)
TF_CPP_MIN_LOG_LEVEL: CUDA probing on CPU machines, oneDNN notices, grappler
remapper complaints. They are not ours and say nothing a user can act on.
`install()` (called by every bin/ tool before TensorFlow loads) routes file
descriptor 2 through a pipe and drops lines in absl's format
(`I0000 00:00:17... 123 file.cc:45] ...`, levels I, W and E) and the two
start-up banners; fatal (F) lines and everything else pass unchanged.
DIGAN_TF_CPP_LOGS=1 keeps them all.
"""

import atexit
import os
import re
import sys
import threading

_NOISE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .*rebuild TensorFlow)")
# A partial line that could still become noise is held until it ends.
_MAYBE_NOISE = re.compile(rb"^(?:[IWE]\d|WARNING: All|To enable)")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")

_state = {}


def stderr_is_terminal():
    """Whether the user's stderr is a terminal (fd 2 itself is a pipe
    once `install` ran)."""
    if "terminal" in _state:
        return _state["terminal"]
    return sys.stderr.isatty()


def _pump(source, target):
    pending = b""
    while True:
        chunk = os.read(source, 65536)
        pending += chunk
        kept = []
        position = 0
        for match in _LINE.finditer(pending):
            if match.start() != position:
                break
            position = match.end()
            if not _NOISE.match(match.group()):
                kept.append(match.group())
        pending = pending[position:]
        if pending and (not chunk or not _MAYBE_NOISE.match(pending)):
            kept.append(pending)
            pending = b""
        if kept:
            os.write(target, b"".join(kept))
        if not chunk:
            return


def install():
    """Filters fd 2 for the rest of the process (once; not when
    DIGAN_TF_CPP_LOGS=1)."""
    if _state or os.environ.get("DIGAN_TF_CPP_LOGS") == "1":
        return
    _state["terminal"] = os.isatty(2)
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, original),
                            daemon=True, name="cpp-log-filter")
    pump.start()

    def restore():
        # Flush, hand fd 2 back (the pipe's last writer closes), then let
        # the pump write what it holds.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(original, 2)
        pump.join(timeout=5)

    atexit.register(restore)
