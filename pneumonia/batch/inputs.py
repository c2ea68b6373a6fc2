"""What an archive holds: every X-ray file of a folder (searched recursively), a
zip, or a CSV with a `file` column, each as a name and a way to read its bytes."""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
import zipfile

# What is read as an X-ray (DICOM also without an extension: a folder's files named so are tried too).
SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".dcm", ".dicom"}


class ArchiveError(ValueError):
    """An archive that cannot be listed: no such path, not a folder, zip or CSV, a CSV without `file`."""


@dataclass(frozen=True)
class Item:
    name: str                        # as written in the answers: relative to the folder, the zip, or as the CSV gives it
    read: Callable[[], bytes]
    path: Path | None = None         # the file on disk (None: a zip's member), for workers that read it themselves


def _file(path: Path) -> Callable[[], bytes]:
    return path.read_bytes


def from_folder(root: Path) -> Iterator[Item]:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
        yield Item(path.relative_to(root).as_posix(), _file(path), path)


def from_zip(path: Path) -> Iterator[Item]:
    archive = zipfile.ZipFile(path)
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if not info.is_dir() and Path(info.filename).suffix.lower() in SUFFIXES and "__MACOSX" not in info.filename:
            yield Item(info.filename, lambda name=info.filename: archive.read(name))


def from_csv(path: Path) -> Iterator[Item]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "file" not in (reader.fieldnames or []):
            raise ArchiveError(f"{path} has no 'file' column (its columns: {', '.join(reader.fieldnames or [])})")
        rows = [r["file"] for r in reader if r["file"]]
    for name in rows:   # relative names are read next to the CSV
        full = Path(name) if Path(name).is_absolute() else path.parent / name
        yield Item(name, _file(full), full)


def items(source: str | Path) -> list[Item]:
    """Every X-ray `source` names, in a fixed order (a second run resumes by name)."""
    path = Path(source)
    if not path.exists():
        raise ArchiveError(f"{path} does not exist")
    if path.is_dir():
        return list(from_folder(path))
    if path.suffix.lower() == ".zip":
        try:
            return list(from_zip(path))
        except zipfile.BadZipFile as e:
            raise ArchiveError(f"{path} is not a readable zip ({e})") from None
    if path.suffix.lower() == ".csv":
        return list(from_csv(path))
    raise ArchiveError(f"{path} is not a folder, a .zip or a .csv of files")


def unpack_zip(path: str | Path, max_files: int = 500, max_bytes: int = 2**30) -> list[tuple[str, str]]:
    """The X-rays of an uploaded zip, unpacked beside it: (name inside the zip, file). A zip
    of more than `max_files` X-rays or `max_bytes` unpacked is refused before anything is written."""
    path = Path(path)
    folder = path.with_suffix(".unpacked")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir() and "__MACOSX" not in i.filename
                       and Path(i.filename).suffix.lower() in SUFFIXES]
            if len(members) > max_files or sum(i.file_size for i in members) > max_bytes:
                raise ArchiveError(f"{path.name} holds {len(members)} X-rays, "
                                   f"{sum(i.file_size for i in members) / 2**20:.0f} MB unpacked: more than "
                                   f"{max_files} or {max_bytes / 2**20:.0f} MB (python -m pneumonia.batch takes any number)")
            names = [i.filename for i in members]
            for name in names:
                archive.extract(name, folder)   # zipfile keeps members inside `folder`, whatever their names
    except zipfile.BadZipFile as e:
        raise ArchiveError(f"{path.name} is not a readable zip ({e})") from None
    return [(name, str(folder / name)) for name in sorted(names)]

