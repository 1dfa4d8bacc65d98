"""The record every benchmark writes beside its printed figures: the figures
with the command, date, commit, CPU, core count and TensorFlow version that
produced them, so that a number quoted in the README can be traced to a run
and to the code it timed."""

import datetime
import json
import os
import statistics
import subprocess
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_description():
    """(CPU model, its vector-instruction flags): what decides which oneDNN
    kernels run, hence how fast."""
    from digan_tf.utils.cpu_info import cpu_info  # loads TF
    from digan_tf.utils.cpu_info import vector_flags  # loads TF

    model, flags = cpu_info()
    return model, vector_flags(flags)


def git(directory, *arguments):
    """The output of `git -C directory arguments...`, stripped; raises
    CalledProcessError where git fails."""
    return subprocess.run(["git", "-C", str(directory), *arguments],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def source_revision(directory=REPOSITORY):
    """{commit, uncommitted_changes} of the git checkout at `directory`:
    the tracked files that differ from that commit (if code is among them,
    the figures timed code that no commit holds), or None outside a git
    checkout."""
    try:
        commit = git(directory, "rev-parse", "HEAD")
        changes = git(directory, "diff", "HEAD", "--name-only")
    except (OSError, subprocess.CalledProcessError):
        return None
    return dict(commit=commit, uncommitted_changes=changes.splitlines())


# Taken when a benchmark imports this module, as it starts: a commit made
# while it runs must not be credited with its figures.
SOURCE_AT_START = source_revision()


def spread(values):
    """Min, median and max of repeated measurements: a best value alone hides
    a noisy (shared) machine."""
    return dict(min=min(values), median=statistics.median(values),
                max=max(values), repeats=len(values))


def spread_text(values):
    """`spread(values)` for a printed line."""
    return "min {min:.0f}, median {median:.0f}, max {max:.0f}".format(
        **spread(values))


def write_record(path, figures):
    """Writes `figures` and where they come from to `path` as JSON,
    atomically (a temporary file beside it, then os.replace), so that an
    interrupted run never leaves half a record."""
    import tensorflow as tf  # here: importing this module must not load it

    model, flags = cpu_description()
    record = dict(
        command=" ".join([os.path.basename(sys.executable)] + sys.argv),
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        source=SOURCE_AT_START,
        cpu=model, cpu_flags=flags, tensorflow=tf.__version__,
        cores=os.cpu_count(), figures=figures)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(temporary, path)
