"""The record every benchmark writes: which code was timed, and never half a
file."""

import json

from tests.testing import benchmark_module

bench_record = benchmark_module("bench_record")
_git = bench_record.git


def test_source_revision_names_the_commit_and_uncommitted_changes(tmp_path):
    """A changed tracked file is named (the figures may time code that no
    commit holds); an untracked file (a benchmark's own output) is not."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit",
         "-q", "-m", "code")
    commit = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "record.json").write_text("{}")
    assert bench_record.source_revision(str(tmp_path)) == dict(
        commit=commit, uncommitted_changes=[])
    (tmp_path / "code.py").write_text("x = 2\n")
    assert bench_record.source_revision(str(tmp_path)) == dict(
        commit=commit, uncommitted_changes=["code.py"])
    assert bench_record.source_revision(str(tmp_path / "absent")) is None


def test_write_record_keeps_the_figures_and_the_commit_at_start(
        tmp_path, monkeypatch):
    """The commit is the one checked out when the benchmark started (here:
    this checkout's), not whatever the checkout holds when it ends."""
    monkeypatch.setattr(bench_record, "source_revision",
                        lambda *_: dict(commit="made during the run"))
    path = tmp_path / "figures.json"
    bench_record.write_record(str(path), {"seconds": 1.5})
    record = json.loads(path.read_text())
    assert record["figures"] == {"seconds": 1.5}
    assert record["source"]["commit"] == _git(bench_record.REPOSITORY,
                                              "rev-parse", "HEAD")
    assert [p.name for p in tmp_path.iterdir()] == ["figures.json"]
