"""Reading the local trace file (where it lives: :mod:`alephant_otel.export._tracepath`).

The read side of :mod:`alephant_otel.export._tracefile`, apart from it because the
CLI and the analytics read files without writing them: this module needs only
the standard library, so ``alephant-otel sessions`` starts without importing
the OpenTelemetry SDK or the protobuf encoder the exporter needs.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from alephant_otel.export._tracepath import default_trace_file, demo_trace_file

__all__ = [
    "TraceFileReader",
    "default_trace_file",
    "demo_trace_file",
    "is_compressed",
    "iter_trace_file",
    "open_trace_file",
    "read_lines",
]

# --- lines and requests ------------------------------------------------------------------------


def _parse_request(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    # Protobuf JSON parsers accept the proto field name too.
    resource_spans = doc["resourceSpans"] if "resourceSpans" in doc else doc.get("resource_spans")
    # Missing: some other JSON, e.g. a metrics or logs request from a Collector
    # file exporter pointed at the same file; not a trace request.
    if not isinstance(resource_spans, list) or not all(isinstance(rs, dict) for rs in resource_spans):
        return None
    return doc


#: Leading bytes of the compressed forms a rotated trace file takes (logrotate's ``compress``).
_COMPRESSED_MAGIC: Final = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "lzma"))


def _compression_of(path: str | os.PathLike[str]) -> str | None:
    """The stdlib module that reads ``path`` (``gzip``, ``bz2``, ``lzma``), or None for plain text.

    Judged by the file's first bytes, not its name: logrotate and hand-made
    archives do not always name them ``.gz``.

    Raises:
        OSError: The file cannot be opened.
    """
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, module in _COMPRESSED_MAGIC:
        if head.startswith(magic):
            return module
    return None


def open_trace_file(path: str | os.PathLike[str]) -> io.BufferedIOBase:
    """Open a trace file for reading lines, decompressing a gzip, bzip2 or xz file on the fly.

    Raises:
        OSError: The file cannot be opened.
    """
    module = _compression_of(path)
    if module == "gzip":
        import gzip

        return gzip.open(path, "rb")
    if module == "bz2":
        import bz2

        return bz2.open(path, "rb")
    if module == "lzma":
        return lzma.open(path, "rb")
    return open(path, "rb")


def is_compressed(fh: io.BufferedIOBase) -> bool:
    """Whether ``fh``, from :func:`open_trace_file`, decompresses (a plain file is a ``BufferedReader``)."""
    return not isinstance(fh, io.BufferedReader)


def read_lines(fh: io.BufferedIOBase, *, on_cut: Callable[[], None]) -> Iterator[bytes]:
    """The lines of a trace file opened with :func:`open_trace_file`.

    A compressed file cut short (copied mid-rotation) or damaged ends at the
    break: what came before is read, ``on_cut`` is called, no error is raised.
    A read error in a plain file is raised.
    """
    compressed = is_compressed(fh)
    lines = iter(fh)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except (EOFError, OSError, zlib.error, lzma.LZMAError):
            if not compressed:
                raise
            on_cut()
            return
        yield line


class TraceFileReader(Iterator[dict[str, Any]]):
    """Iterates the ``ExportTraceServiceRequest`` objects of an OTLP/JSON lines file.

    Reads files written by :class:`TraceFileExporter` and by the Collector's
    ``file`` exporter (``format: json``). Each item is one line's JSON object
    as written (ids stay hex strings, 64-bit integers stay decimal strings).

    Only the top level is checked: a line is used when it is a JSON object
    with a ``resourceSpans`` (or ``resource_spans``) list of objects. Blank
    lines are ignored. Any other line is skipped and counted in
    :attr:`corrupt`, except a last line without its ``\\n`` that does not
    parse: that is usually a writer in the middle of a write, so it only sets
    :attr:`incomplete_tail`.

    The file is opened on the first ``next()`` and closed when iteration ends
    or on :meth:`close`; use it as a context manager to stop early cleanly.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
        >>> _ = path.write_text('{"resourceSpans":[]}\\nnot json\\n\\n{"resourceSpans":[]}\\n{"resou')
        >>> reader = iter_trace_file(path)
        >>> len(list(reader)), reader.corrupt, reader.incomplete_tail
        (2, 1, True)

    Attributes:
        path: The file being read.
        corrupt: Lines skipped so far because they are not a trace request.
        incomplete_tail: Whether the file ended in an unparsable line with no newline.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Prepare to read ``path`` (``~`` expanded); nothing is opened yet."""
        self.path = Path(os.fspath(path)).expanduser()
        self.corrupt = 0
        self.incomplete_tail = False
        self._lines: Generator[dict[str, Any], None, None] | None = None
        self._closed = False

    def __iter__(self) -> TraceFileReader:
        """The reader is its own iterator."""
        return self

    def __next__(self) -> dict[str, Any]:
        """The next trace request.

        Raises:
            OSError: The file cannot be opened or read (``FileNotFoundError``
                when it does not exist).
            StopIteration: End of file.
        """
        if self._closed:
            raise StopIteration
        if self._lines is None:
            self._lines = self._read()
        return next(self._lines)

    def close(self) -> None:
        """Close the file; further iteration yields nothing."""
        self._closed = True
        if self._lines is not None:
            self._lines.close()

    def __enter__(self) -> TraceFileReader:
        """Use the reader in a ``with`` block."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the file."""
        self.close()

    def _cut(self) -> None:
        self.corrupt += 1  # the line a cut or damaged compressed stream broke

    def _read(self) -> Generator[dict[str, Any], None, None]:
        with open_trace_file(self.path) as fh:
            for raw in read_lines(fh, on_cut=self._cut):
                if not raw.strip():
                    continue
                doc = _parse_request(raw)
                if doc is not None:
                    yield doc
                elif raw.endswith(b"\n"):
                    self.corrupt += 1
                else:
                    self.incomplete_tail = True


def iter_trace_file(path: str | os.PathLike[str]) -> TraceFileReader:
    """Iterate the trace requests in an OTLP/JSON lines file, counting corrupt lines.

    Args:
        path: A file written by :class:`TraceFileExporter` or by the
            Collector's ``file`` exporter.

    Returns:
        A :class:`TraceFileReader`: iterate it for the requests (dicts), then
        read its ``corrupt`` count.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
        >>> _ = path.write_text('{"resourceSpans":[]}\\n{oops\\n')
        >>> reader = iter_trace_file(path)
        >>> for request in reader:
        ...     pass
        >>> print(f"skipped {reader.corrupt} corrupt lines")
        skipped 1 corrupt lines
    """
    return TraceFileReader(path)
