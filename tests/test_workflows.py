"""The workflows' local parts: history pushes from concurrent jobs never lose a run."""

import subprocess
import threading

from helpers import ROOT, git

PUSH = ROOT / "scripts" / "push_history.sh"


def test_two_concurrent_history_pushes_both_land(tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    (seed / "README").write_text("history\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "start")
    git(seed, "push", "-q", "origin", "HEAD:perf-history")
    jobs = {}
    for kind in ("cpu", "gpu"):  # two matrix jobs, each with a clone taken before either pushed
        clone = tmp_path / kind
        git(tmp_path, "clone", "-q", "--branch", "perf-history", str(remote), str(clone))
        (clone / kind).mkdir()
        (clone / kind / "0001_run.json").write_text(f'{{"kind": "{kind}"}}\n')
        git(clone, "add", "-A")
        git(clone, "commit", "-qm", f"history: {kind} run")
        jobs[kind] = clone
    results = {}

    def push(kind: str) -> None:
        results[kind] = subprocess.run(
            ["bash", str(PUSH), str(jobs[kind]), str(remote), "perf-history"], capture_output=True, text=True
        )

    threads = [threading.Thread(target=push, args=(kind,)) for kind in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {kind: r.returncode for kind, r in results.items()} == {"cpu": 0, "gpu": 0}, results
    files = git(tmp_path, "--git-dir", str(remote), "ls-tree", "-r", "--name-only", "perf-history").split()
    assert sorted(files) == ["README", "cpu/0001_run.json", "gpu/0001_run.json"]
    assert any("attempt 2" in r.stdout or "attempt 3" in r.stdout for r in results.values())  # one had to retry
