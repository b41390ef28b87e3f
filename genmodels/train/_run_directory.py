"""The one owner of a run directory: what may be overwritten, the config, the metrics log, results, the lock.

A run directory holds ``config.json`` (the run's config, compared on resume), ``metrics.jsonl`` (one JSON row
per line), ``checkpoints/<step>/`` and, once the run is finished, ``results.json``; ``run.lock`` names the job
that holds it (:mod:`genmodels.train._lock`). Opening one applies these rules:

* a path that is a file is refused; a missing or empty directory is used as is;
* a non-empty directory that holds no run (none of ``RUN_MARKERS``) is refused: it is someone else's;
* a finished run (``results.json``) is refused unless ``overwrite``; an unfinished run needs ``resume``
  (continue from the latest checkpoint, with an equal config) or ``overwrite``;
* ``overwrite`` deletes only the entries the run owns: ``RUN_MARKERS``, the names in ``owned``, and their
  ``.tmp`` leftovers. With ``owned`` given, any other entry is refused (nothing is deleted); with
  ``owned=None`` (the library default) other entries beside a run are left alone.

Files are replaced atomically (``results.json``, ``config.json``, a truncated ``metrics.jsonl``): a SIGKILL
or a Ctrl-C leaves the previous version. With several ``jax.distributed`` processes, process 0 applies the
rules, takes the lock and writes; it then broadcasts its decision and the job id to the other processes,
which check the lock names that job. Pass ``job_id=`` (or set ``$GENMODELS_JOB_ID``) to name the job;
otherwise process 0 draws a random id.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Any

import jax

from genmodels.errors import (
    ArgumentError,
    ArgumentTypeError,
    RunDirectoryError,
    RunDirectoryLockedError,
    RunExistsError,
)
from genmodels.train._files import atomic_write, tmp_path_of, write_json
from genmodels.train._lock import LOCK_NAME, RunLock, new_job_id

RUN_MARKERS = ("results.json", "config.json", "metrics.jsonl", "checkpoints")
_LOCK_FILES = (LOCK_NAME, LOCK_NAME + ".break")


def _as_json(config: Any) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    return json.loads(json.dumps(config, default=str))


class RunDirectory:
    """A run directory opened for one job (see the module docstring); a re-entrant context manager.

    Args:
        path: the directory (created if missing).
        resume: continue the unfinished run it holds (``fit`` restores the latest checkpoint).
        overwrite: delete a previous run (only the entries it owns) and start afresh. Not with ``resume``.
        config: the run's config (JSON-able, or a dataclass): written to ``config.json``; on resume it must
            equal the stored one.
        owned: names directly under ``path`` that the caller writes besides the run files (pictures, a
            sub-run); with it, any other entry is refused. None: other entries beside a run are left alone.
        break_lock: take the lock even from a job that seems alive (after making sure it is not running).
        job_id: the id of this job in the lock (default ``$GENMODELS_JOB_ID``, else drawn by process 0).

    ``with RunDirectory(...) as run:`` applies the rules and takes the lock; the lock is released when the
    outermost ``with`` ends (or at interpreter exit). ``open()`` / ``close()`` do the same by hand. Hold one
    ``with`` around everything a job writes (``fit(run_dir=run)``, then ``run.write_results(...)``);
    ``overwrite`` acts at the first open only.
    """

    def __init__(self, path: str | Path, *, resume: bool = False, overwrite: bool = False, config: Any = None,
                 owned: tuple[str, ...] | None = None, break_lock: bool = False, job_id: str | None = None):  # fmt: skip
        if not isinstance(path, (str, Path)):
            raise ArgumentTypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}.")
        for name, flag in (("resume", resume), ("overwrite", overwrite), ("break_lock", break_lock)):
            if not isinstance(flag, bool):
                raise ArgumentTypeError(f"{name} must be True or False, got {flag!r}.")
        if resume and overwrite:
            raise ArgumentError("resume and overwrite exclude each other (--resume / --overwrite).")
        self.path = Path(path)
        self.resume, self.overwrite, self.break_lock = resume, overwrite, break_lock
        self.config = None if config is None else _as_json(config)
        self.owned = None if owned is None else tuple(owned)
        self.job_id = job_id
        self._lock: RunLock | None = None
        self._depth = 0

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    checkpoints_path = property(lambda self: self.path / "checkpoints")
    results_path = property(lambda self: self.path / "results.json")

    @property
    def writer(self) -> bool:
        """Whether this process writes the run's files (process 0)."""
        return jax.process_index() == 0

    @property
    def finished(self) -> bool:
        return self.results_path.exists()

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r}, resume={self.resume}, overwrite={self.overwrite})"

    # ---- opening: rules and lock ------------------------------------------------------------------

    def open(self) -> RunDirectory:
        """Apply the rules and take the lock (only the first of nested calls does work)."""
        if self._depth == 0:
            if jax.process_count() > 1:
                self._open_distributed()
            else:
                self._open_here()
            self.overwrite = False  # deletes once: a later open of this value (after close) keeps the new run
        self._depth += 1
        return self

    def close(self) -> None:
        """Release the lock when the outermost ``open`` ends."""
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0 and self._lock is not None:
            if self.writer:
                self._lock.release()
            self._lock = None

    def __enter__(self) -> RunDirectory:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _entries(self) -> list[str]:
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"run directory {self.path} exists and is not a directory; choose a directory.")
        if not self.path.exists():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name not in _LOCK_FILES)

    def _check_rules(self) -> list[str]:
        """The entries to delete (with ``overwrite``); raises if the directory may not be used as asked."""
        entries = self._entries()
        owned = set(RUN_MARKERS) | set(self.owned or ())
        owned |= {tmp_path_of(Path(n)).name for n in owned}
        markers = set(RUN_MARKERS) | {tmp_path_of(Path(n)).name for n in RUN_MARKERS}  # a marker cut by a kill counts
        is_run = any(name in markers for name in entries)
        if entries and not is_run:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise RunDirectoryError(f"run directory {self.path} is a non-empty directory that holds no run ({shown}); "
                                    "choose a new or empty directory.")  # fmt: skip
        foreign = [n for n in entries if n not in owned] if self.owned is not None else []
        if foreign:
            raise RunDirectoryError(f"run directory {self.path} holds files this run did not write "
                                    f"({', '.join(foreign[:5])}); refusing to touch it.")  # fmt: skip
        if self.overwrite:
            return [n for n in entries if n in owned]
        if "results.json" in entries:
            raise RunExistsError(f"run directory {self.path} already holds a finished run (results.json); pass "
                                 "overwrite=True (--overwrite) to redo it from scratch, or choose a new directory.")  # fmt: skip
        if is_run and not self.resume:
            raise RunExistsError(
                f"run directory {self.path} already holds a run ({', '.join(n for n in entries if n in RUN_MARKERS)}) "
                "that is not finished; pass resume=True (--resume) to continue it from its latest checkpoint, "
                "or overwrite=True (--overwrite) to start afresh."
            )
        return []

    def _open_here(self) -> None:
        """Process 0 (or a single process): rules, lock, rules again under the lock, then act."""
        self._check_rules()  # refuse before creating anything
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunDirectoryError(f"cannot create run directory {self.path}: {err.strerror}.") from err
        self.job_id = self.job_id or new_job_id()
        self._lock = RunLock(self.path / LOCK_NAME, self.job_id, break_lock=self.break_lock)
        self._lock.acquire()
        try:
            for name in self._check_rules():
                target = self.path / name
                shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
            self._check_config()
            if self.metrics_path.exists() and not self.metrics_path.read_bytes().endswith(b"\n"):
                with open(self.metrics_path, "a") as f:  # a line cut by a killed process stays on its own
                    f.write("\n")
        except BaseException:
            self._lock.release()
            self._lock = None
            raise

    def _open_distributed(self) -> None:
        from genmodels.train._distributed import broadcast_from_first

        index = jax.process_index()
        error: Exception | None = None
        if index == 0:
            try:
                self._open_here()
            except Exception as err:  # noqa: BLE001 - the other processes must hear of any failure
                error = err
        message = {"ok": error is None, "job": self.job_id, "locked": isinstance(error, RunDirectoryLockedError),
                   "error": f"{type(error).__name__}: {error}" if error else ""}  # fmt: skip
        got = json.loads(broadcast_from_first(json.dumps(message).encode() if index == 0 else b""))
        if error is not None:
            raise error
        if index == 0:
            return
        if not got["ok"]:
            kind = RunDirectoryLockedError if got["locked"] else RunDirectoryError
            raise kind(f"process 0 could not open run directory {self.path}: {got['error']}")
        if self.job_id is not None and self.job_id != got["job"]:
            raise RunDirectoryError(f"job_id {self.job_id!r} of process {index} differs from process 0's "
                                    f"{got['job']!r}; give every process of a job the same job id.")  # fmt: skip
        self.job_id = got["job"]
        self._lock = RunLock(self.path / LOCK_NAME, self.job_id)
        self._lock.verify(self.job_id, index)

    def _check_config(self) -> None:
        if self.config is None:
            return
        if self.config_path.exists():
            try:
                old = json.loads(self.config_path.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                raise RunDirectoryError(f"{self.config_path} is not valid JSON ({err}); restore it, or start a "
                                        "new run (overwrite=True / --overwrite).") from err  # fmt: skip
            if old != self.config:
                raise RunDirectoryError(f"resume with a different config than the run in {self.path} "
                                        f"({_config_diff(old, self.config)}); use the original options or a new "
                                        "run directory.")  # fmt: skip
        else:
            write_json(self.config_path, self.config)

    # ---- files ------------------------------------------------------------------------------------

    def read_metrics(self) -> list[dict]:
        """The rows of ``metrics.jsonl`` (a line cut by a kill is skipped)."""
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def restart_metrics(self, upto: int | None) -> tuple[list[dict], int]:
        """Keep the rows of steps ``<= upto`` (none when ``upto`` is None), rewriting the file atomically, so
        a resumed run does not append a second history; returns (kept rows, number of rows dropped)."""
        rows = self.read_metrics()
        kept = [r for r in rows if upto is not None and r.get("step", math.inf) <= upto]
        if self.writer and self.metrics_path.exists():
            atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept, len(rows) - len(kept)

    def log(self, row: dict) -> None:
        """Append one row to ``metrics.jsonl`` (process 0 only)."""
        if self.writer:
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as ``<path>/<name>`` atomically (process 0 only); returns the file's path."""
        target = self.path / name
        return write_json(target, data) if self.writer else target

    def write_results(self, data: Any) -> Path:
        """Write ``results.json`` atomically: from then on the run counts as finished."""
        return self.write_json("results.json", data)


def _config_diff(old: Any, new: Any) -> str:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{old!r} -> {new!r}"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)
