"""Undoing ``content-encoding`` on a watched body: gzip and deflate always, br and zstd when installed.

A decompressed body is cut at 32 MiB (a small gzip body may expand enormously); a cut body is
decoded up to the cut, which is where a stream's model and id are.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any, Final

__all__ = ["decode_body"]

#: Decompressed bodies are cut here: a small gzip body may expand enormously.
_MAX_DECODED: Final = 32 << 20


_DECODE_STEP: Final = 16 << 10


def decode_body(body: bytes, encoding: str, whole: bool) -> tuple[bytes | None, bool]:
    """Undo ``content-encoding``. Returns (bytes or None, whether they are the whole body).

    The codings httpx and httpx2 decode: gzip and deflate always, ``br`` and
    ``zstd`` when the library they use is installed (which is also when they
    ask for them in ``accept-encoding``). A cut body cannot be decompressed
    past the cut, but its head can: that is where a stream's model and id are.
    """
    data = body
    codings = [c.strip() for c in encoding.lower().split(",") if c.strip() and c.strip() != "identity"]
    for i, coding in enumerate(reversed(codings)):
        if coding in ("gzip", "x-gzip", "deflate"):
            data, whole = _inflate(data, coding, whole)
        elif coding == "br":
            unbrotli = _brotli_decompressor()
            if unbrotli is None:
                return None, whole
            data, whole = _unbrotli(unbrotli, data, whole)
        elif coding == "zstd":
            unzstd = _zstd_decompressor()
            if unzstd is None:
                return None, whole
            data, whole = _unzstd(unzstd, data, whole)
        else:
            return None, whole
        if i + 1 < len(codings) and not whole:
            return None, False  # a cut inner layer cannot feed the outer one
    return data, whole


@functools.cache  # a failed import searches the path again every time
def _brotli_decompressor() -> Callable[[], Any] | None:
    """``brotli.Decompressor`` (or brotlicffi's), as httpx imports it; None when neither is installed."""
    try:
        import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        try:
            import brotlicffi as brotli  # type: ignore[import-not-found,import-untyped,unused-ignore,no-redef]
        except ImportError:
            return None
    maker: Callable[[], Any] = brotli.Decompressor
    return maker


@functools.cache
def _zstd_decompressor() -> Callable[[], Any] | None:
    """A zstd decompressor factory with the ``compression.zstd`` interface, or None.

    ``compression.zstd`` (Python 3.14) or ``backports.zstd`` is what httpx2
    uses; ``zstandard`` is what httpx uses, adapted here.
    """
    try:
        from compression.zstd import ZstdDecompressor  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports.zstd import ZstdDecompressor  # type: ignore[import-not-found,unused-ignore,no-redef]
        except ImportError:
            try:
                import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]
            except ImportError:
                return None
            return lambda: _Zstandard(zstandard)
    maker: Callable[[], Any] = ZstdDecompressor
    return maker


class _Zstandard:
    """``zstandard``'s decompressobj behind the ``compression.zstd`` interface.

    It has no output bound, so input is fed in small steps (see ``_unzstd``).
    """

    step = 1 << 10

    def __init__(self, zstandard: Any) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self.needs_input = True

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out: bytes = self._obj.decompress(data)
        return out

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)


def _unbrotli(make: Callable[[], Any], data: bytes, whole: bool) -> tuple[bytes, bool]:
    """Decode a brotli body, at most ``_MAX_DECODED`` bytes of it; a cut or broken one up to the cut."""
    decoder = make()
    out: list[bytes] = []
    size = 0
    try:
        for start in range(0, len(data), _DECODE_STEP):
            piece = _brotli_step(decoder, data[start : start + _DECODE_STEP], _MAX_DECODED - size)
            out.append(piece)
            size += len(piece)
            # With an output limit, what did not fit comes out of calls with no new input.
            while size < _MAX_DECODED and not _brotli_takes_more(decoder):
                piece = _brotli_step(decoder, b"", _MAX_DECODED - size)
                if not piece:
                    break
                out.append(piece)
                size += len(piece)
            if size >= _MAX_DECODED:
                return b"".join(out)[:_MAX_DECODED], False
        finished = bool(decoder.is_finished())
    except Exception:  # brotli.error is not a subclass of anything useful
        return b"".join(out), False
    return b"".join(out), whole and finished


def _brotli_step(decoder: Any, data: bytes, limit: int) -> bytes:
    try:
        out: bytes = decoder.process(data, output_buffer_limit=limit)
    except TypeError:  # brotli < 1.2, brotlicffi: no output limit
        out = decoder.process(data)
    return out


def _brotli_takes_more(decoder: Any) -> bool:
    check = getattr(decoder, "can_accept_more_data", None)
    return True if check is None else bool(check())


def _unzstd(make: Callable[[], Any], data: bytes, whole: bool) -> tuple[bytes, bool]:
    """Decode a zstd body (one frame or several), at most ``_MAX_DECODED`` bytes; a cut one up to the cut."""
    decoder = make()
    step = getattr(decoder, "step", _DECODE_STEP)
    out: list[bytes] = []
    size = 0
    pending = memoryview(data)
    ended = False  # a frame ended and no input followed it
    try:
        while pending:
            chunk, pending = bytes(pending[:step]), pending[step:]
            ended = False
            while True:
                piece = decoder.decompress(chunk, _MAX_DECODED - size)
                chunk = b""
                out.append(piece)
                size += len(piece)
                if size >= _MAX_DECODED:
                    return b"".join(out)[:_MAX_DECODED], False
                if decoder.eof:
                    # Another frame may follow: a stream compressed frame by frame.
                    rest = decoder.unused_data
                    pending = memoryview(rest + bytes(pending)) if rest else pending
                    decoder = make()
                    ended = True
                    break
                if decoder.needs_input or not piece:
                    break
    except Exception:  # ZstdError, zstandard.ZstdError
        return b"".join(out), False
    return b"".join(out), whole and ended


def _inflate(data: bytes, coding: str, whole: bool) -> tuple[bytes, bool]:
    if coding == "deflate" and data[:1] and (data[0] & 0x0F) != 8:
        wbits = -zlib.MAX_WBITS  # raw deflate, as some servers send it
    else:
        wbits = (16 + zlib.MAX_WBITS) if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    for start in range(0, len(data), _DECODE_STEP):
        try:
            piece = inflater.decompress(data[start : start + _DECODE_STEP], _MAX_DECODED - size)
        except zlib.error:
            return b"".join(out), False
        out.append(piece)
        size += len(piece)
        if inflater.unconsumed_tail or size >= _MAX_DECODED:
            return b"".join(out), False
        if inflater.eof:
            break
    return b"".join(out), whole and inflater.eof
