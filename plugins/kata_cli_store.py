"""The progress file: where it is, what it holds, read with recovery, written atomically.

Shared by the saved_progress plugin, which writes it after plain pytest runs, and the `kata`
command, which reads it and records the hints it shows. This module imports no pytest plugin,
so the command can read progress and then run pytest in the same process.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

PROGRESS_FILE_VARIABLE = "KATA_PROGRESS_FILE"
SAVE_VARIABLE = "KATA_PROGRESS_SAVE"  # "0": save nothing (the self-check's child runs)
DEFAULT_FILE_NAME = ".kata-progress.json"
FORMAT_VERSION = 1
NOT_STARTED, IN_PROGRESS, DONE = "not started", "in progress", "done"
STATUSES = (NOT_STARTED, IN_PROGRESS, DONE)
CORRUPT = (
    "kata progress: {path} could not be read as progress ({why}); it was moved aside to "
    "{aside} and progress starts afresh."
)


def shown_path(path: Path) -> str:
    """Relative to the working folder where it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class KataRecord:
    """What the progress file remembers about one kata."""

    status: str = NOT_STARTED
    passed: int = 0
    total: int = 0  # tests in the kata's whole suite; 0 until a run has counted them
    last_run: str | None = None  # ISO 8601, UTC
    hints_seen: int = 0  # the highest hint level shown (--kata-hints, `kata hint`)
    last_run_partial: bool = False

    def describe(self) -> str:
        """'not started', 'in progress 3 of 8' or 'done'."""
        if self.status == IN_PROGRESS and self.total:
            return f"{IN_PROGRESS} {self.passed} of {self.total}"
        return self.status

    @classmethod
    def from_json(cls, data: object) -> KataRecord:
        """The record `data` holds; ValueError when it is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"a kata's entry is {type(data).__name__}, not an object")
        known = {f.name: f for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        record = cls(**values)
        checks = [
            record.status in STATUSES,
            isinstance(record.passed, int) and isinstance(record.total, int),
            isinstance(record.hints_seen, int) and isinstance(record.last_run_partial, bool),
            record.last_run is None or isinstance(record.last_run, str),
        ]
        if not all(checks):
            raise ValueError(f"an entry has an unexpected value: {data!r}")
        return record


@dataclass
class ProgressFile:
    """The progress file at `path`: read with recovery, written atomically."""

    path: Path
    warnings: list[str] = field(default_factory=list)

    def load(self) -> dict[str, KataRecord]:
        """Every kata's record; {} when there is no file yet. A file that is not progress is
        moved aside (a warning is added to `warnings`), never an error."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            return self._recover(f"{type(error).__name__}: {error}")
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("katas"), dict):
                raise ValueError("it holds no 'katas' object")
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('version')!r}, not {FORMAT_VERSION}")
            return {str(k): KataRecord.from_json(v) for k, v in data["katas"].items()}
        except (ValueError, TypeError) as error:  # json's errors are ValueErrors too
            return self._recover(str(error))

    def _recover(self, why: str) -> dict[str, KataRecord]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
            where = shown_path(aside)
        except OSError as error:
            where = f"nowhere ({error}; it will be overwritten)"
        self.warnings.append(CORRUPT.format(path=shown_path(self.path), why=why, aside=where))
        return {}

    def save(self, records: dict[str, KataRecord]) -> None:
        """Write every record: a temporary file in the same folder, renamed over the old."""
        data = {
            "version": FORMAT_VERSION,
            "katas": {name: asdict(record) for name, record in sorted(records.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not tempfile.mkstemp: its files are private (0600); this one gets the umask's mode.
        temporary = self.path.with_name(
            f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def progress_path(root: Path, start: Path | None = None) -> Path:
    """The one progress file: $KATA_PROGRESS_FILE (relative to `start`, default the working
    folder), else `.kata-progress.json` in the repository root."""
    chosen = os.environ.get(PROGRESS_FILE_VARIABLE, "").strip()
    if chosen:
        return ((start or Path.cwd()) / Path(chosen).expanduser()).resolve()
    return root.resolve() / DEFAULT_FILE_NAME


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
