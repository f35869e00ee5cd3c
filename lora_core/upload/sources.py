"""Where an adapter's two files come from: a zip (bytes or a path), the two files' bytes, or a folder on the server.

Each is opened as a :class:`Source` that hands out fresh sequential streams of the config and of the weights, read in
bounded steps (a zip entry inflated only as far as it is read), so that the reader can go through the weights again.
"""
from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..adapter import CONFIG_NAME, WEIGHTS_NAME
from ..echo import shown, shown_list
from .archive import ZipEntry, check_declared_sizes, find_adapter, open_zip, refuse_pickles
from .limits import CONFIG_MAX_BYTES

MAX_UPLOAD_BYTES = 512 * 1024 * 1024      # r = 64 on every linear layer of a 7B model in 16 bits is about 320 MB


class Stream:
    """Sequential reads of one file held in memory or on disk, with the ZipEntry interface (read, finish)."""

    def __init__(self, label: str, data: bytes | None = None, path: Path | None = None, limit: int = 0):
        self.label, self._data, self._path, self._pos = label, data, path, 0
        self.size = len(data) if data is not None else path.stat().st_size
        if self.size > limit:
            raise ValueError(f"{label} is {self.size:,} bytes, over the limit of {limit:,} bytes")
        self._file = open(path, "rb") if path is not None else None

    def read(self, n: int) -> bytes:
        if self._file is not None:
            return self._file.read(n)
        chunk = self._data[self._pos: self._pos + n]
        self._pos += len(chunk)
        return bytes(chunk)

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()

    def read_all(self) -> bytes:
        blob = self.read(self.size)
        self.finish()
        return blob


@dataclass
class Source:
    """How to open the config and the weights again, as fresh streams."""
    describe: str
    open_config: object
    open_weights: object
    size: int = 0


def _zip_source(data: bytes, what: str) -> Source:
    with open_zip(data) as zf:
        check_declared_sizes(zf, MAX_UPLOAD_BYTES)
        infos = [info for info in zf.infolist() if not info.is_dir()]
    names = [info.filename for info in infos]
    refuse_pickles(names)
    config_name, weights_name = find_adapter(names)
    by_name = {info.filename: info for info in infos}
    return Source(what, lambda: ZipEntry(data, by_name[config_name], CONFIG_MAX_BYTES),
                   lambda: ZipEntry(data, by_name[weights_name], MAX_UPLOAD_BYTES), len(data))


def open_source(source) -> Source:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the file is {len(data):,} bytes, over the limit of {MAX_UPLOAD_BYTES:,} bytes")
        if not data:
            raise ValueError(f"the file is empty; upload a .zip of the adapter folder, or {CONFIG_NAME} and "
                             f"{WEIGHTS_NAME} together")
        return _zip_source(data, "the zip")
    if isinstance(source, Mapping):
        names = list(source)
        refuse_pickles([str(n) for n in names])
        missing = [n for n in (CONFIG_NAME, WEIGHTS_NAME) if n not in source]
        if missing:
            raise ValueError(f"{shown_list(missing)} missing: upload {CONFIG_NAME} and {WEIGHTS_NAME} together "
                             f"(got {shown_list([str(n) for n in names]) or 'nothing'})")
        config, weights = bytes(source[CONFIG_NAME]), bytes(source[WEIGHTS_NAME])
        return Source("the two files", lambda: Stream(CONFIG_NAME, config, limit=CONFIG_MAX_BYTES),
                       lambda: Stream(WEIGHTS_NAME, weights, limit=MAX_UPLOAD_BYTES), len(config) + len(weights))
    path = Path(source)
    if path.is_file() and zipfile.is_zipfile(path):
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise ValueError(f"{shown(path.name)} is {path.stat().st_size:,} bytes, over the limit of "
                             f"{MAX_UPLOAD_BYTES:,} bytes")
        return _zip_source(path.read_bytes(), shown(path.name))
    if path.is_dir():
        refuse_pickles([p.name for p in path.iterdir()])
        config, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        for p in (config, weights):
            if not p.is_file():
                raise ValueError(f"{shown(path.name)} has no {p.name}")
        return Source(shown(path.name), lambda: Stream(CONFIG_NAME, path=config, limit=CONFIG_MAX_BYTES),
                       lambda: Stream(WEIGHTS_NAME, path=weights, limit=MAX_UPLOAD_BYTES),
                       config.stat().st_size + weights.stat().st_size)
    raise ValueError(f"{shown(str(source), 80)} is neither an adapter folder nor a zip of one")
