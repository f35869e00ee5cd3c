"""The zip of an upload, read within bounds: its directory counted before zipfile parses it, and each entry
inflated in small steps, its declared sizes checked against the actual ones.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

from ..adapter import CONFIG_NAME, WEIGHTS_NAME
from ..echo import shown, shown_list
from .limits import CENTRAL_DIRECTORY_MAX_BYTES, MAX_ENTRIES

# everything a damaged or hostile zip can make zipfile/zlib raise
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
               RuntimeError, NotImplementedError, KeyError, ValueError, OverflowError, struct.error,
               UnicodeDecodeError)
_CHUNK = 64 * 1024  # input fed to zlib per step; zlib never returns more than it is asked for
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "deflate64"}
# torch.save and friends write pickles, and unpickling runs arbitrary code
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def _central_directory(data: bytes) -> tuple[int, int]:
    """The entry count and central-directory size the end record declares, found as zipfile finds them.

    zipfile creates one object per central-directory record while opening, so both are bounded here,
    before zipfile reads any record.
    """
    size, eocd = len(data), -1
    if size >= 22 and data[-22:-18] == b"PK\x05\x06" and data[-2:] == b"\0\0":
        eocd = size - 22
    else:
        eocd = data.rfind(b"PK\x05\x06", max(size - 65536 - 22, 0))
    if eocd < 0 or eocd + 22 > size:
        raise ValueError("the file is not a zip archive (it has no end-of-archive record)")
    *_, count, cd_size, _, _ = struct.unpack_from("<4s4H2IH", data, eocd)
    # a zip64 locator just before the end record replaces both numbers, as zipfile reads them
    if eocd >= 20 + 56 and data[eocd - 20: eocd - 16] == b"PK\x06\x07" and \
            data[eocd - 76: eocd - 72] == b"PK\x06\x06":
        count, cd_size = struct.unpack_from("<4sQ2H2L4Q", data, eocd - 76)[7:9]
    return count, cd_size


def _check_entry_counts(data: bytes) -> None:
    count, cd_size = _central_directory(data)
    if count > MAX_ENTRIES or cd_size > CENTRAL_DIRECTORY_MAX_BYTES:
        raise ValueError(f"the zip declares {count:,} entries in a central directory of {cd_size:,} bytes; "
                         f"at most {MAX_ENTRIES} entries in {CENTRAL_DIRECTORY_MAX_BYTES:,} bytes are accepted")


def open_zip(data: bytes) -> zipfile.ZipFile:
    _check_entry_counts(data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise ValueError(f"the file is not a zip archive ({shown(exc)})") from None
    if len(zf.infolist()) > MAX_ENTRIES:  # the bound above already implies it; this says it plainly
        zf.close()
        raise ValueError(f"the zip holds {len(zf.infolist()):,} entries; at most {MAX_ENTRIES} are accepted")
    return zf


def check_declared_sizes(zf: zipfile.ZipFile, max_bytes: int) -> None:
    # a zip bomb is small on the wire and huge inflated: refuse by the sizes the archive declares
    # (the two entries that are read are also checked against their actual sizes while being read)
    total = sum(info.file_size for info in zf.infolist())
    if total > max_bytes:
        raise ValueError(f"the zip declares {total:,} bytes uncompressed, over the limit of {max_bytes:,} bytes")


def refuse_pickles(names: list[str]) -> None:
    pickles = [n for n in names if n.lower().endswith(_PICKLE_SUFFIXES)]
    if pickles:
        raise ValueError(f"the zip holds {shown_list(pickles)}: only safetensors is accepted, never a pickle "
                         f"(save with safe_serialization=True)")


def find_adapter(names: list[str]) -> tuple[str, str]:
    """Paths of the config and the weights, at the zip's top level or inside one folder."""
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"the zip holds {shown_list(twice)} more than once")
    shallow = [n for n in names if n.count("/") <= 1]
    configs = [n for n in shallow if n.rsplit("/", 1)[-1] == CONFIG_NAME]
    if not configs:
        raise ValueError(f"the zip has no {CONFIG_NAME} (looked at its top level and inside one folder)")
    if len(configs) > 1:
        raise ValueError(f"the zip holds {len(configs)} adapters ({shown_list(configs)}); upload one")
    weights = configs[0][: -len(CONFIG_NAME)] + WEIGHTS_NAME
    if weights not in names:
        raise ValueError(f"the zip has no {WEIGHTS_NAME} beside {shown(configs[0])}")
    return configs[0], weights


class ZipEntry:
    """One zip entry, inflated only as far as it is read, its declared sizes checked against the actual ones.

    zipfile is used for the directory only: it inflates bzip2 and LZMA entries in one call, whatever
    their size, and silently cuts an entry that inflates past its declared size. Here only stored and
    deflate entries are accepted, zlib is never asked for more than the caller reads, and an entry
    that declares more than ``limit`` bytes, or inflates past what it declares, is refused.
    """

    def __init__(self, data: bytes, info: zipfile.ZipInfo, limit: int):
        self.info, self.label = info, shown(info.filename)
        if info.flag_bits & 0x41:
            raise ValueError(f"{self.label} is encrypted; upload an unencrypted zip")
        if info.compress_type not in _METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise ValueError(f"{self.label} uses {method} compression; only stored and deflate entries "
                             f"(what every zip tool writes by default) are accepted")
        if info.file_size > limit:
            raise ValueError(f"{self.label} declares {info.file_size:,} bytes, over the limit of {limit:,} bytes "
                             f"for it")
        start = self._data_start(data, info)
        if start + info.compress_size > len(data):
            raise ValueError(f"{self.label} declares {info.compress_size:,} compressed bytes, but only "
                             f"{max(len(data) - start, 0):,} bytes of the file follow its header")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ValueError(f"{self.label} is stored uncompressed but declares {info.compress_size:,} compressed "
                             f"and {info.file_size:,} uncompressed bytes")
        self._src = memoryview(data)[start: start + info.compress_size]
        self._pos = 0
        self._inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        self._out, self._crc = 0, 0

    def _data_start(self, data: bytes, info: zipfile.ZipInfo) -> int:
        at = info.header_offset
        if at < 0 or at + 30 > len(data) or data[at: at + 4] != b"PK\x03\x04":
            raise ValueError(f"{self.label} could not be read from the zip (no local header where the "
                             f"directory points)")
        name_len, extra_len = struct.unpack_from("<2H", data, at + 26)
        raw = bytes(data[at + 30: at + 30 + name_len])
        name = raw.decode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace")
        if name != info.orig_filename:
            raise ValueError(f"{self.label} could not be read from the zip (its local header names "
                             f"{shown(name)})")
        return at + 30 + name_len + extra_len

    def read(self, n: int) -> bytes:
        """Up to ``n`` more bytes; fewer only where the entry ends. Never inflates more than asked for."""
        # one byte past the declared size is enough to catch an entry that lies about it
        want = min(n, self.info.file_size + 1 - self._out)
        parts, got = [], 0
        while got < want:
            if self._inflater is None:
                chunk = bytes(self._src[self._pos: self._pos + want - got])
                self._pos += len(chunk)
                if not chunk:
                    break
            else:
                if self._inflater.eof:
                    break
                source = self._inflater.unconsumed_tail
                if not source:
                    # the next input, or none: zlib may still hold output for input it has taken
                    source = self._src[self._pos: self._pos + _CHUNK]
                    self._pos += len(source)
                try:
                    chunk = self._inflater.decompress(source, want - got)
                except zlib.error as exc:
                    raise ValueError(f"{self.label} could not be read from the zip ({shown(exc)})") from None
                if not chunk and not source:
                    raise ValueError(f"{self.label} could not be read from the zip: its compressed data stops "
                                     f"before its deflate stream ends (declared compressed size "
                                     f"{self.info.compress_size:,} bytes)")
            parts.append(chunk)
            got += len(chunk)
        blob = b"".join(parts)
        self._out += len(blob)
        self._crc = zlib.crc32(blob, self._crc)
        if self._out > self.info.file_size:
            raise ValueError(f"{self.label} could not be read from the zip: it inflates past its declared size "
                             f"of {self.info.file_size:,} bytes")
        return blob

    def finish(self) -> None:
        """The entry must end exactly where it declares, and where its compressed data ends, with its CRC."""
        self.read(1)  # raises if anything is left past the declared size
        declared, used = self.info.compress_size, self._pos - len(self._inflater.unused_data if self._inflater else b"")
        if self._inflater is not None and not self._inflater.eof:
            raise ValueError(f"{self.label} could not be read from the zip: its compressed data stops before its "
                             f"deflate stream ends (declared compressed size {declared:,} bytes)")
        if self._inflater is not None and (self._inflater.unused_data or self._pos < len(self._src)):
            raise ValueError(f"{self.label} declares {declared:,} compressed bytes, but its deflate stream ends "
                             f"after {used:,}")
        if self._out < self.info.file_size:
            raise ValueError(f"{self.label} holds {self._out:,} bytes, fewer than the {self.info.file_size:,} "
                             f"it declares")
        if self._crc != self.info.CRC:
            raise ValueError(f"{self.label} could not be read from the zip: it fails its CRC-32 check")

    def read_all(self) -> bytes:
        blob = self.read(self.info.file_size)
        self.finish()
        return blob
