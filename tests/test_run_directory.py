"""gm.train.RunDirectory: what may be overwritten, config on resume, metrics on resume, atomic writes under
Ctrl-C, and the lock (a second process is refused naming the holder; a dead holder's lock is taken over)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import genmodels as gm
from genmodels.train import RunDirectory
from genmodels.train._lock import RunLock, read_lock

REPO = Path(__file__).resolve().parents[1]


def run_files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def make_run(path: Path, finished: bool = False, extra: tuple[str, ...] = ()) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"lr": 0.1}')
    (path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / (s + 1)}) + "\n" for s in range(5))
    )
    (path / "checkpoints").mkdir()
    if finished:
        (path / "results.json").write_text('{"done": true}')
    for name in extra:
        (path / name).write_text("x")
    return path


# ------------------------------------------------------------------------------------------------- rules
def test_fresh_and_empty_directories_are_used(tmp_path):
    with RunDirectory(tmp_path / "new" / "run", config={"lr": 0.1}) as run:
        assert run.path.is_dir() and (run.path / gm.train.LOCK_NAME).exists()
        assert json.loads(run.config_path.read_text()) == {"lr": 0.1}
    assert not (run.path / gm.train.LOCK_NAME).exists()  # released
    (tmp_path / "empty").mkdir()
    with RunDirectory(tmp_path / "empty"):
        pass


def test_refusals_change_nothing(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(gm.errors.RunDirectoryError, match="not a directory"):
        RunDirectory(tmp_path / "file").open()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for kw in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(gm.errors.RunDirectoryError, match="holds no run"):
            RunDirectory(foreign, **kw).open()
    finished = make_run(tmp_path / "finished", finished=True)
    unfinished = make_run(tmp_path / "unfinished")
    before = {p: run_files(p) for p in (foreign, finished, unfinished)}
    for kw in ({}, {"resume": True}):
        with pytest.raises(gm.errors.RunExistsError, match="finished run.*--overwrite"):
            RunDirectory(finished, **kw).open()
    with pytest.raises(FileExistsError, match="resume=True"):  # RunExistsError is also a FileExistsError
        RunDirectory(unfinished).open()
    with pytest.raises(gm.errors.RunDirectoryError, match="did not write.*notes.txt"):  # owned given: strict
        (unfinished / "notes.txt").write_text("mine")
        RunDirectory(unfinished, overwrite=True, owned=("samples.png",)).open()
    (unfinished / "notes.txt").unlink()
    with pytest.raises(ValueError, match="exclude each other"):
        RunDirectory(unfinished, resume=True, overwrite=True)
    assert {p: run_files(p) for p in (foreign, finished, unfinished)} == before


def test_overwrite_deletes_only_owned_entries(tmp_path):
    run = make_run(tmp_path / "run", finished=True, extra=("samples.png", "results.json.tmp", "mine.txt"))
    with RunDirectory(run, overwrite=True):  # owned=None: the caller's files beside a run stay
        pass
    assert sorted(p.name for p in run.iterdir()) == ["mine.txt", "samples.png"]
    run = make_run(tmp_path / "run2", finished=True, extra=("samples.png",))
    with RunDirectory(run, overwrite=True, owned=("samples.png",)):
        assert sorted(p.name for p in run.iterdir()) == [gm.train.LOCK_NAME]


def test_resume_compares_config_and_names_a_garbled_file(tmp_path):
    run = make_run(tmp_path / "run")
    with RunDirectory(run, resume=True, config={"lr": 0.1}):
        pass
    with pytest.raises(gm.errors.RunDirectoryError, match=r"different config.*lr: 0.1 -> 0.2"):
        RunDirectory(run, resume=True, config={"lr": 0.2}).open()
    (run / "config.json").write_text('{"lr": 0.')
    with pytest.raises(gm.errors.RunDirectoryError, match=str(run / "config.json")):
        RunDirectory(run, resume=True, config={"lr": 0.1}).open()


def test_restart_metrics_drops_the_rows_after_the_checkpoint(tmp_path):
    run = make_run(tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')  # a line cut by a kill
    with RunDirectory(run, resume=True) as rd:
        kept, dropped = rd.restart_metrics(2)
        assert [r["step"] for r in kept] == [0, 1, 2] and dropped == 2
        assert [r["step"] for r in rd.read_metrics()] == [0, 1, 2]
        rd.log({"step": 2, "event": "resume"})
        assert rd.restart_metrics(None) == ([], 4) and rd.read_metrics() == []


# ---------------------------------------------------------------------------------------- atomic writes
@pytest.fixture
def default_ctrl_c():
    """Python's own SIGINT handler (KeyboardInterrupt) for the test, whatever the worker process inherited
    or an earlier test in it left behind (an xdist worker's handler is not guaranteed to be the default)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_a_results_write_finishes_it_first(tmp_path, monkeypatch, default_ctrl_c):
    """SIGINT arriving in the middle of the write is held: the new file is complete, then KeyboardInterrupt."""
    run = make_run(tmp_path / "run")
    real_fsync = os.fsync

    def fsync_then_interrupted(fd):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between writing and renaming
        real_fsync(fd)

    with RunDirectory(run, resume=True) as rd:
        rd.write_results({"value": 1})
        monkeypatch.setattr(os, "fsync", fsync_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            rd.write_results({"value": 2, "big": list(range(10000))})
        monkeypatch.setattr(os, "fsync", real_fsync)
    assert json.loads(rd.results_path.read_text())["value"] == 2
    assert not (run / "results.json.tmp").exists()


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    gm.train.write_json(path, {"value": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        gm.train.write_json(path, {"value": 2})
    assert json.loads(path.read_text()) == {"value": 1} and not (tmp_path / "results.json.tmp").exists()


def test_ctrl_c_during_a_checkpoint_save_keeps_it_whole(tmp_path, default_ctrl_c):
    import numpy as np

    ckpt = gm.train.Checkpointer(tmp_path / "checkpoints")
    tree = {"w": np.arange(6.0, dtype=np.float32)}
    ckpt.save(1, tree)
    real = ckpt._manager.save

    def save_interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    ckpt._manager.save = save_interrupted
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(2, {"w": tree["w"] + 1})
    ckpt._manager.save = real
    assert ckpt.steps() == [1, 2]
    assert np.array_equal(np.asarray(ckpt.restore(2, tree)[0]["w"]), tree["w"] + 1)
    assert np.array_equal(np.asarray(ckpt.restore(1, tree)[0]["w"]), tree["w"])
    ckpt.close()


# ------------------------------------------------------------------------------------------------- lock
HOLDER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from genmodels.train import RunDirectory
    runs = [RunDirectory(path, resume=True, config={{"lr": 0.1}}).open() for path in sys.argv[1:]]
    runs[0].log({{"step": 5, "event": "resume"}})
    print("ready", flush=True)
    sys.stdin.read()  # hold the locks until the test closes stdin (or kills this process)
    """
)


def test_lock_fault_second_process_refused_then_stale_lock_taken_over(tmp_path):
    """A second process holds two run directories: this one is refused with a message naming the holder and
    nothing changes; break_lock takes the second directory; after the holder is killed (SIGKILL) its lock
    is stale and taken over silently."""
    run, other = make_run(tmp_path / "run"), make_run(tmp_path / "other")
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(repo=str(REPO)))
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "GENMODELS_JOB_ID": "job-of-the-holder"}
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(other)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        before = run_files(run)
        for kw in ({"resume": True}, {"overwrite": True}):
            with pytest.raises(gm.errors.RunDirectoryLockedError) as err:
                RunDirectory(run, **kw).open()
            msg = str(err.value)
            assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "job-of-the-holder" in msg
            assert "break_lock=True" in msg and "--break-lock" in msg
        assert run_files(run) == before  # nothing changed, the holder's lock included
        with pytest.warns(UserWarning, match="breaking the lock"):
            with RunDirectory(other, resume=True, break_lock=True):
                assert read_lock(other / gm.train.LOCK_NAME)[0].pid == os.getpid()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert read_lock(run / gm.train.LOCK_NAME)[0].pid == proc.pid  # left behind by the killed holder
        with RunDirectory(run, resume=True) as rd:
            assert read_lock(run / gm.train.LOCK_NAME)[0].pid == os.getpid()
            assert rd.read_metrics()[-1] == {"step": 5, "event": "resume"}
        assert not (run / gm.train.LOCK_NAME).exists()
    finally:
        proc.kill()
        proc.communicate()


def test_a_lock_still_held_at_exit_is_released(tmp_path):
    run = make_run(tmp_path / "run")
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from genmodels.train import RunDirectory\n"
            f"rd = RunDirectory({str(run)!r}, resume=True).open(); print(rd.path.joinpath('run.lock').exists())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ,
                         "JAX_PLATFORMS": "cpu"}, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr[-2000:]
    assert not (run / gm.train.LOCK_NAME).exists()  # released by atexit


def test_lock_is_reentrant_in_a_process_and_checks_the_job_of_other_processes(tmp_path):
    run = tmp_path / "run"
    outer = RunDirectory(run, job_id="job-a").open()
    with RunDirectory(run, resume=True):  # the same process: counted, not refused
        pass
    assert (run / gm.train.LOCK_NAME).exists()
    RunLock(run / gm.train.LOCK_NAME, "job-a").verify("job-a", process=1)
    with pytest.raises(gm.errors.RunDirectoryLockedError, match="job-a"):
        RunLock(run / gm.train.LOCK_NAME, "job-b").verify("job-b", process=1)
    outer.close()
    with pytest.raises(gm.errors.RunDirectoryError, match="filesystem all processes share"):
        RunLock(run / gm.train.LOCK_NAME, "job-a").verify("job-a", process=1)


def test_garbled_or_foreign_host_locks(tmp_path):
    run = make_run(tmp_path / "run")
    lock = run / gm.train.LOCK_NAME
    lock.write_text("")  # a holder killed while writing the lock
    old = time.time() - 60
    os.utime(lock, (old, old))
    with RunDirectory(run, resume=True):
        pass
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 1, "job_id": "j", "started": "then"}))
    with pytest.raises(gm.errors.RunDirectoryLockedError, match="pid 1 on host elsewhere"):
        RunDirectory(run, resume=True).open()
