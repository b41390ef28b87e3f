"""The lock of a run directory: it is held by one job at a time.

The lock is the file ``<run dir>/run.lock``, created atomically (``O_CREAT | O_EXCL``) by process 0 of a job
and holding JSON with the holder's host, pid, job id, start time and command line. Other processes of the
same ``jax.distributed`` job do not create it: they check that it names their job id (see
:class:`~genmodels.train.RunDirectory`, which passes process 0's id to the others).

A lock is *stale* when its host is this host and its process is gone (the pid is dead, a zombie, or now
belongs to a process started at another time; or the machine rebooted since): it is then taken over
silently, so a run killed with SIGKILL resumes without help. A lock held by a live process, or by a process
on another host (whose liveness this host cannot see), refuses the run with a
:class:`~genmodels.errors.RunDirectoryLockedError` naming the holder and how to break the lock
(``break_lock=True``, ``--break-lock`` in the experiment scripts). Within one process a lock is re-entrant:
opening a run directory that this process already holds only counts up. Locks still held at interpreter
exit are released (``atexit``).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import socket
import sys
import time
import uuid
import warnings
from pathlib import Path

from genmodels.errors import RunDirectoryError, RunDirectoryLockedError

LOCK_NAME = "run.lock"
JOB_ID_ENV = "GENMODELS_JOB_ID"
_GARBLED_GRACE_S = 10.0  # a lock file without valid content younger than this may be mid-write


def new_job_id() -> str:
    """The job id of this process: ``$GENMODELS_JOB_ID`` if set, else a fresh random id."""
    return os.environ.get(JOB_ID_ENV) or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _proc_start(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of ``pid`` from ``/proc`` (Linux), or None."""
    text = _read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def _boot_id() -> str | None:
    text = _read_text("/proc/sys/kernel/random/boot_id")
    return text.strip() if text else None


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """Who holds a run directory."""

    host: str
    pid: int
    job_id: str
    started: str
    command: str = ""
    boot_id: str | None = None
    pid_start: int | None = None

    @classmethod
    def mine(cls, job_id: str) -> LockInfo:
        proc = _proc_start(os.getpid())
        return cls(socket.gethostname(), os.getpid(), job_id, time.strftime("%Y-%m-%d %H:%M:%S %z"),
                   " ".join(sys.argv)[:300], _boot_id(), proc[1] if proc else None)  # fmt: skip

    def describe(self) -> str:
        cmd = f"; command: {self.command}" if self.command else ""
        return f"job {self.job_id} (pid {self.pid} on host {self.host}, since {self.started}{cmd})"

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and is certainly gone."""
        if self.host != socket.gethostname():
            return False
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return True
        proc = _proc_start(self.pid)
        if proc is not None:
            return proc[0] == "Z" or (self.pid_start is not None and proc[1] != self.pid_start)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def read_lock(path: Path) -> tuple[LockInfo | None, str | None]:
    """(holder, raw text) of the lock file; (None, None) when there is none, (None, text) when garbled."""
    text = _read_text(str(path))
    if text is None:
        return None, None
    try:
        data = json.loads(text)
        return LockInfo(**{f.name: data[f.name] for f in dataclasses.fields(LockInfo) if f.name in data}), text
    except (ValueError, TypeError, KeyError):
        return None, text


_HELD: dict[str, list] = {}  # resolved lock path -> [RunLock, count]


class RunLock:
    """The lock file of one run directory (see the module docstring)."""

    def __init__(self, path: Path, job_id: str, *, break_lock: bool = False):
        self.path, self.job_id, self.break_lock = Path(path), job_id, break_lock
        self.info: LockInfo | None = None

    @property
    def _key(self) -> str:
        return str(self.path.resolve())

    def acquire(self) -> None:
        """Take the lock (process 0), or count up if this process holds it already."""
        if self._key in _HELD:
            _HELD[self._key][1] += 1
            self.info = _HELD[self._key][0].info
            return
        for _ in range(200):
            if self._try_create():
                _HELD[self._key] = [self, 1]
                return
            holder, text = read_lock(self.path)
            if text is None:
                continue  # released meanwhile
            if holder is None and not self.break_lock and self._age() < _GARBLED_GRACE_S:
                time.sleep(0.05)  # being written right now
                continue
            own_leftover = holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname()
            if holder is None or own_leftover or holder.is_dead_here() or self.break_lock:
                if self.break_lock and holder is not None and not (own_leftover or holder.is_dead_here()):
                    warnings.warn(f"breaking the lock of {self.path.parent} held by {holder.describe()}.", stacklevel=4)
                self._take_over(text)
                continue
            raise RunDirectoryLockedError(
                f"run directory {self.path.parent} is in use by {holder.describe()}. Two jobs writing one run "
                "directory would corrupt it: wait for that job to end or use another directory. If it is no "
                "longer running (e.g. its host went down), break the lock: break_lock=True in Python, "
                f"--break-lock on an experiment's command line (lock file: {self.path})."
            )
        raise RunDirectoryLockedError(f"could not take the lock {self.path}: other processes keep taking it.")

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise RunDirectoryError(f"cannot create the lock file {self.path}: {err.strerror}.") from err
        self.info = LockInfo.mine(self.job_id)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(dataclasses.asdict(self.info)))
            f.flush()
            os.fsync(f.fileno())
        return True

    def _take_over(self, seen: str) -> None:
        """Remove the lock file if it still holds ``seen``; breakers are serialised by a second O_EXCL file."""
        mutex = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if time.time() - mutex.stat().st_mtime > 30:
                mutex.unlink(missing_ok=True)  # left by a breaker that died
            time.sleep(0.05)
            return
        try:
            os.close(fd)
            if _read_text(str(self.path)) == seen:
                self.path.unlink(missing_ok=True)
        finally:
            mutex.unlink(missing_ok=True)

    def release(self) -> None:
        """Count down; at zero remove the lock file if it is still this process's."""
        entry = _HELD.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[self._key]
        holder, _ = read_lock(self.path)
        if holder is not None and self.info is not None and holder == self.info:
            self.path.unlink(missing_ok=True)

    def verify(self, job_id: str, process: int) -> None:
        """On a process other than 0: the lock file exists and names this job."""
        holder, text = read_lock(self.path)
        if text is None:
            raise RunDirectoryError(f"process {process} sees no lock file {self.path}, which process 0 of its job "
                                    "created: the run directory must be on a filesystem all processes share.")  # fmt: skip
        if holder is None or holder.job_id != job_id:
            who = holder.describe() if holder else "an unreadable lock"
            raise RunDirectoryLockedError(f"run directory {self.path.parent} is held by {who}, not by this job "
                                          f"({job_id}); see {self.path}.")  # fmt: skip


@atexit.register
def _release_all() -> None:
    for lock, _ in list(_HELD.values()):
        _HELD[lock._key][1] = 1
        lock.release()
