"""The files of a built index and their recorded digests (``IndexMeta.files``), checked before use.

``build_index`` records every file it leaves in the folder (except ``meta.json``, which holds the
record): size and SHA-256, computed when each file was written (the shards' come from their done
markers). ``TrainingIndex.open`` then

- checks that every recorded file is there with its recorded size (a stat each: free);
- reads ``ids.parquet``, ``reference.npy``, ``reference_rows.npy`` and ``boxes.parquet`` once,
  checks their SHA-256 on the bytes read and parses those very bytes;
- checks ``index.faiss``'s SHA-256 before FAISS parses it (a damaged file never reaches FAISS);
- checks each embedding shard once, before its first vectors are read (``VectorStore``);

and refuses a file that differs in one line naming it and saying to rebuild. The other files
(the shards' id and skipped tables, their done markers, ``build.json``, ``shards/shards.json``)
are not read after the build; their sizes are checked, and ``verify_all`` checks every digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from biasprobe.core.digests import FileDigest, in_parallel, problem, read_verified
from biasprobe.core.errors import DamagedStateError
from biasprobe.index.meta import REBUILD

__all__ = ["IndexFiles", "record_files"]


def record_files(folder: Path, names: Iterable[str], *, known: Mapping[str, FileDigest] | None = None) -> dict[str, FileDigest]:
    """Digests of ``names`` (paths relative to ``folder``): from ``known`` where given (recorded
    when those files were written), else read from the files just written."""
    known = known or {}
    return {name: known[name] if name in known else FileDigest.of_file(folder / name) for name in names}


class IndexFiles:
    """The recorded files of the index in ``folder``: check them, read them checked."""

    def __init__(self, folder: Path, recorded: Mapping[str, FileDigest]) -> None:
        self.folder = folder
        self.recorded = dict(recorded)

    def damaged(self, name: str, why: str) -> DamagedStateError:
        return DamagedStateError(f"index {self.folder} is damaged: {name} {why}; {REBUILD}")

    def _digest(self, name: str) -> FileDigest:
        if name not in self.recorded:
            raise self.damaged(name, "is not among the files its meta.json recorded")
        return self.recorded[name]

    def check_sizes(self) -> None:
        """Every recorded file is there with its recorded size."""
        for name, digest in self.recorded.items():
            why = problem(self.folder / name, digest, contents=False)
            if why is not None:
                raise self.damaged(name, why)

    def read(self, name: str) -> bytes:
        """The bytes of ``name`` once they match the recorded digest."""
        data, why = read_verified(self.folder / name, self._digest(name))
        if why is not None:
            raise self.damaged(name, why)
        assert data is not None
        return data

    def verify(self, path: Path) -> None:
        """Check one file (an absolute path inside the folder) against its recorded digest."""
        name = Path(path).relative_to(self.folder).as_posix()
        why = problem(path, self._digest(name))
        if why is not None:
            raise self.damaged(name, why)

    def verify_all(self) -> None:
        """Check every recorded file's SHA-256 (one read of the whole index, several files at a time)."""
        in_parallel(self.verify, [self.folder / name for name in self.recorded])
