"""chlocal: ClickHouse's HTTP interface in front of the real ClickHouse engine (chDB).

For development and tests only; production never uses this server.

The HTTP front end (this process, many threads) mirrors ClickHouse's HTTP handler
(src/Server/HTTPHandler.cpp, src/Server/HTTP/exceptionCodeToHTTPStatus.cpp,
src/Server/HTTP/sendExceptionToHTTPClient.cpp, src/Server/HTTP/authenticateUserByHTTP.cpp):
URL parameters, auth, compression, headers, error status codes and bodies. Queries run in a child
process (engine.py) that hosts libchdb.so; requests are serialized (chDB has one engine and one
session per process, and per-request settings are applied as SET + restore). If the engine process
dies, the request gets an error and a new engine starts on the same data directory.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
import lzma
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import engine as engine_proto  # noqa: E402

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None
try:
    import lz4.frame as lz4_frame
    import lz4.block as lz4_block
except ImportError:  # pragma: no cover
    lz4_frame = None
    lz4_block = None
try:
    import brotli
except ImportError:  # pragma: no cover
    brotli = None
try:
    from clickhouse_cityhash.cityhash import CityHash128
except ImportError:  # pragma: no cover
    CityHash128 = None

log = logging.getLogger("chlocal")

# --------------------------------------------------------------------------------------------
# Exception code -> HTTP status, mirroring ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp
# (by error name; the numbers come from the engine's errorCodeToName() at start-up).
# REQUIRED_PASSWORD is answered with 401 + WWW-Authenticate (sendExceptionToHTTPClient.cpp).
# --------------------------------------------------------------------------------------------
HTTP_STATUS_BY_ERROR_NAME: list[tuple[int, tuple[str, ...]]] = [
    (401, ("REQUIRED_PASSWORD",)),
    (403, ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED")),
    (400, ("BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
           "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
           "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
           "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
           "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
           "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
           "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE")),
    (404, ("UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
           "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
           "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE")),
    (413, ("QUERY_IS_TOO_LARGE",)),
    (501, ("NOT_IMPLEMENTED",)),
    (503, ("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE")),
    (411, ("HTTP_LENGTH_REQUIRED",)),
    (408, ("TIMEOUT_EXCEEDED",)),
    (503, ("CANNOT_SCHEDULE_TASK",)),
    (415, ("UNSUPPORTED_MEDIA_TYPE",)),
]

# Fallback numbers (ClickHouse's src/Common/ErrorCodes.cpp) for codes the front end raises itself
# before the engine has told us its table.
FALLBACK_CODES = {
    "SYNTAX_ERROR": 62, "UNKNOWN_SETTING": 115, "READONLY": 164, "REQUIRED_PASSWORD": 194,
    "AUTHENTICATION_FAILED": 516, "BAD_ARGUMENTS": 36, "NOT_IMPLEMENTED": 48, "UNKNOWN_EXCEPTION": 1002,
    "STD_EXCEPTION": 1001, "CORRUPTED_DATA": 246, "CHECKSUM_DOESNT_MATCH": 40, "UNKNOWN_COMPRESSION_METHOD": 89,
    "CANNOT_DECOMPRESS": 271, "HTTP_LENGTH_REQUIRED": 381, "UNKNOWN_USER": 192,
}

# URL parameters that are not settings (HTTPHandler.cpp reserved_param_names, plus the ones handled
# before it: database, default_format, query, param_*). `role` is accepted and ignored.
RESERVED_PARAMS = {"compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace",
                   "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
                   "client_protocol_version", "close_session", "role", "query", "database", "default_format"}

CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8; header=present",
    "TSVWithNames": "text/tab-separated-values; charset=UTF-8; header=present",
    "TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8; header=present",
    "TSVWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8; header=present",
    "TabSeparatedRaw": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "CSVWithNamesAndTypes": "text/csv; charset=UTF-8; header=present",
}
BINARY_FORMAT_PREFIXES = ("RowBinary", "Native", "Parquet", "Arrow", "ORC", "Avro", "Protobuf", "CapnProto",
                          "MsgPack", "BSONEachRow", "Npy")

FORMAT_TAIL_RE = re.compile(r"\bFORMAT\s+([A-Za-z_][A-Za-z0-9_]*)(\s+SETTINGS\b.*)?\s*;?\s*$",
                            re.IGNORECASE | re.DOTALL)
SET_RE = re.compile(rb"\bSET\b|\bUSE\b", re.IGNORECASE)
INSERT_RE = re.compile(r"^\s*INSERT\b", re.IGNORECASE)
# An INSERT whose text ends with its FORMAT clause; whatever follows is the data.
INSERT_FORMAT_RE = re.compile(r"^(\s*INSERT\b.*?)\s+FORMAT\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE | re.DOTALL)


def skip_data_prefix(data: bytes, pos: int) -> int:
    """ParserInsertQuery: data starts after spaces/tabs and then one (CR)LF after the format name."""
    n = len(data)
    while pos < n and data[pos] in (0x20, 0x09, 0x0C):
        pos += 1
    if pos < n and data[pos] == 0x0D:
        pos += 1
    if pos < n and data[pos] == 0x0A:
        pos += 1
    return pos


def split_insert(query_param: bytes, body: bytes) -> tuple[str, str, bytes] | None:
    """(INSERT without FORMAT, format, data) when the INSERT text ends with FORMAT <name> (URL query
    parameter, or the head of the body), so the data can go to the engine as a separate stream."""
    full = query_param + body
    head = full[:1 << 16].decode("utf-8", "replace")
    m = INSERT_FORMAT_RE.match(head)
    if not m:
        return None
    end_chars = m.end()
    end = len(head[:end_chars].encode("utf-8"))
    if full[end:end + 1].isalnum() or full[end:end + 1] == b"_":
        return None
    if len(query_param) > end and query_param[end:].strip():
        return None  # the URL query goes on after FORMAT name (e.g. SETTINGS): leave it to the parser
    if "\ufffd" in head[:end_chars]:
        return None
    return m.group(1), m.group(2), full[skip_data_prefix(full, end):]
READ_ONLY_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"}


def content_type_for(fmt: str) -> str:
    if fmt in CONTENT_TYPES:
        return CONTENT_TYPES[fmt]
    if fmt.startswith("JSON") or fmt.startswith("PrettyJSON"):
        return "application/json; charset=UTF-8"
    if fmt.startswith(BINARY_FORMAT_PREFIXES):
        return "application/octet-stream"
    if fmt == "XML":
        return "application/xml; charset=UTF-8"
    return "text/plain; charset=UTF-8"


class ClickHouseError(Exception):
    def __init__(self, code_name: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code_name = code_name
        self.message = message
        self.code = code


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------
# SQL helpers (lexical only: strings, quoted identifiers, comments)
# --------------------------------------------------------------------------------------------
def _skip_ws_comments(s: str, i: int) -> int:
    n = len(s)
    while i < n:
        if s[i].isspace():
            i += 1
        elif s.startswith("--", i) or s.startswith("#", i):
            j = s.find("\n", i)
            i = n if j < 0 else j + 1
        elif s.startswith("/*", i):
            j = s.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            break
    return i


def first_keyword(sql: str) -> str:
    i = 0
    while True:
        i = _skip_ws_comments(sql, i)
        if i < len(sql) and sql[i] == "(":
            i += 1
            continue
        break
    m = re.match(r"[A-Za-z_]+", sql[i:])
    return m.group(0).upper() if m else ""


def multi_statement_position(sql: str) -> int:
    """Position of a second statement after ';' (outside strings/comments), or -1."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"', "`"):
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif sql.startswith("--", i) or sql.startswith("/*", i) or c == "#":
            i = _skip_ws_comments(sql, i)
        elif c == ";":
            k = _skip_ws_comments(sql, i + 1)
            while k < n and sql[k] == ";":
                k = _skip_ws_comments(sql, k + 1)
            if k < n:
                return i
            return -1
        else:
            i += 1
    return -1


# --------------------------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------------------------
def decode_content_encoding(body: bytes, encoding: str) -> bytes:
    enc = encoding.strip().lower()
    if enc in ("", "none", "identity"):
        return body
    try:
        if enc in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if enc == "deflate":
            return zlib.decompress(body)
        if enc == "br" and brotli is not None:
            return brotli.decompress(body)
        if enc == "xz":
            return lzma.decompress(body)
        if enc in ("zstd", "zst") and zstandard is not None:
            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
        if enc == "lz4" and lz4_frame is not None:
            return lz4_frame.decompress(body)
    except ClickHouseError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ClickHouseError("CANNOT_DECOMPRESS", "Cannot decompress %s request body: %s" % (enc, e)) from e
    raise ClickHouseError(
        "BAD_ARGUMENTS",
        "Unknown compression method '%s'. Only 'auto', 'none', 'gzip', 'deflate', 'br', 'xz', 'zstd', 'lz4', "
        "'lz4hc', 'bz2', 'snappy' are supported as compression methods" % encoding)


def city128_bytes(data: bytes) -> bytes:
    h = CityHash128(data)
    m = (1 << 64) - 1
    return struct.pack("<QQ", (h >> 64) & m, h & m)


def decode_native_compressed(body: bytes, verify: bool) -> bytes:
    """ClickHouse's CompressedReadBuffer: [16-byte CityHash128][method][u32 compressed size incl. 9-byte
    header][u32 uncompressed size][data], repeated."""
    out = []
    i, n = 0, len(body)
    while i < n:
        if n - i < 25:
            raise ClickHouseError("CORRUPTED_DATA", "Cannot read all data. Bytes read: %d. Bytes expected: 25." % (n - i))
        checksum = body[i:i + 16]
        method = body[i + 16]
        csize, usize = struct.unpack_from("<II", body, i + 17)
        if csize < 9 or i + 16 + csize > n:
            raise ClickHouseError("CORRUPTED_DATA", "Too large size_compressed_without_checksum: %d" % csize)
        block = body[i + 16:i + 16 + csize]
        if verify and CityHash128 is not None and city128_bytes(block) != checksum:
            raise ClickHouseError("CHECKSUM_DOESNT_MATCH", "Checksum doesn't match: corrupted data.")
        payload = block[9:]
        if method == 0x82:
            data = lz4_block.decompress(payload, uncompressed_size=usize)
        elif method == 0x90:
            data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=usize)
        elif method == 0x02:
            data = payload
        else:
            raise ClickHouseError("UNKNOWN_COMPRESSION_METHOD", "Unknown compression method: %d" % method)
        if len(data) != usize:
            raise ClickHouseError("CANNOT_DECOMPRESS", "Cannot decompress: size mismatch")
        out.append(data)
        i += 16 + csize
    return b"".join(out)


def encode_native_compressed(data: bytes, block_size: int = 1 << 20) -> bytes:
    out = []
    for off in range(0, max(len(data), 1), block_size):
        chunk = data[off:off + block_size]
        comp = lz4_block.compress(chunk, store_size=False)
        block = bytes([0x82]) + struct.pack("<II", len(comp) + 9, len(chunk)) + comp
        out.append(city128_bytes(block) + block)
        if not data:
            break
    return b"".join(out)


def choose_response_encoding(accept: str) -> str | None:
    # Same order (and the same substring matching) as HTTPHandler.cpp.
    for token, available in (("br", brotli is not None), ("gzip", True), ("deflate", True), ("xz", True),
                             ("zstd", zstandard is not None), ("lz4", lz4_frame is not None)):
        if token in accept and available:
            return token
    return None


def encode_response(data: bytes, method: str, level: int) -> bytes:
    if method == "gzip":
        return gzip.compress(data, compresslevel=max(1, min(9, level)))
    if method == "deflate":
        return zlib.compress(data, max(1, min(9, level)))
    if method == "br":
        return brotli.compress(data)
    if method == "xz":
        return lzma.compress(data)
    if method == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if method == "lz4":
        return lz4_frame.compress(data)
    return data


# --------------------------------------------------------------------------------------------
# Engine process
# --------------------------------------------------------------------------------------------
class EngineDied(Exception):
    pass


class Engine:
    def __init__(self, lib: str, data_path: str, config_file: str, log_dir: str) -> None:
        self.lib = lib
        self.data_path = data_path
        self.config_file = config_file
        self.log_dir = log_dir
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.info: dict[str, Any] = {}
        self.start()

    def start(self) -> None:
        parent, child = socket.socketpair()
        stderr = open(os.path.join(self.log_dir, "engine.stderr.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "engine.py"), "--fd", str(child.fileno()), "--lib", self.lib,
                 "--path", self.data_path, "--config-file", self.config_file],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, pass_fds=[child.fileno()], close_fds=True)
        finally:
            child.close()
            stderr.close()
        self.sock = parent
        frame = engine_proto.recv_frame(parent)
        if frame is None or not frame[0].get("ready"):
            code = self.proc.wait(timeout=30)
            raise RuntimeError("engine failed to start (exit %s); see %s" % (code, os.path.join(self.log_dir, "engine.stderr.log")))
        self.info = frame[0]
        with open(os.path.join(self.log_dir, "engine.pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        log.info("engine pid %d ready: ClickHouse %s", self.proc.pid, self.info.get("version"))

    def stop(self) -> None:
        # A request may still hold the lock (a long query): give it a while, then end the engine anyway.
        if self.lock.acquire(timeout=15):
            try:
                self._stop_locked()
            finally:
                self.lock.release()
        elif self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def _stop_locked(self) -> None:
        if self.sock is not None:
            try:
                engine_proto.send_frame(self.sock, {"op": "shutdown"}, b"")
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def call(self, header: dict[str, Any], payload: bytes) -> tuple[dict[str, Any], bytes]:
        with self.lock:
            if self.sock is None:
                self.start()
            assert self.sock is not None
            try:
                engine_proto.send_frame(self.sock, header, payload)
                frame = engine_proto.recv_frame(self.sock)
            except OSError:
                frame = None
            if frame is None:
                status = None
                if self.proc is not None:
                    try:
                        status = self.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        status = self.proc.wait()
                self.sock.close()
                self.sock = None
                self.proc = None
                log.error("engine process died (status %s); restarting", status)
                try:
                    self.start()
                except Exception:  # noqa: BLE001
                    log.exception("engine restart failed; will retry on the next request")
                raise EngineDied("the engine process died while running this query (exit status %s); "
                                 "a new engine was started" % status)
            return frame


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------
class User:
    def __init__(self, name: str, password: str, settings: dict[str, str] | None = None, readonly: int = 0) -> None:
        self.name = name
        self.password = password
        self.settings = {k: str(v) for k, v in (settings or {}).items()}
        self.readonly = int(readonly)
        if "readonly" in self.settings:
            self.readonly = int(self.settings.pop("readonly"))


def load_users(users_file: str | None, user_args: list[str]) -> dict[str, User]:
    users: dict[str, User] = {}
    if users_file:
        with open(users_file) as f:
            data = json.load(f)
        if isinstance(data, dict) and "users" in data:
            data = data["users"]
        for u in data:
            user = User(u["name"], u.get("password", ""), u.get("settings"), u.get("readonly", 0))
            users[user.name] = user
    for spec in user_args:
        name, _, password = spec.partition(":")
        users[name] = User(name, password)
    if not users:
        users["default"] = User("default", "")
    return users


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], engine: Engine, users: dict[str, User]) -> None:
        super().__init__(addr, Handler)
        self.engine = engine
        self.users = users
        self.codes: dict[str, int] = dict(FALLBACK_CODES)
        self.codes.update(engine.info.get("error_codes", {}))
        self.names_by_code = {v: k for k, v in self.codes.items()}
        self.status_by_code: dict[int, int] = {}
        for status, names in HTTP_STATUS_BY_ERROR_NAME:
            for name in names:
                if name in self.codes:
                    self.status_by_code.setdefault(self.codes[name], status)
        self.version = engine.info.get("version", "26.7.2.1")
        self.timezone = engine.info.get("timezone", "UTC")
        self.display_name = engine.info.get("display_name", "chlocal")


ERROR_RE = re.compile(r"^Code: (\d+)\. ")
# chDB sometimes wraps an exception that already carries its text (and version) once more:
# "Code: 252. DB::Exception: Code: 252. DB::Exception: Too many parts ... (TOO_MANY_PARTS) (version X). (TOO_MANY_PARTS)"
WRAPPED_ERROR_RE = re.compile(r"^Code: (\d+)\. DB::Exception: (Code: \1\. DB::Exception: .*)\. \([A-Z_0-9]+\)$", re.DOTALL)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chlocal"

    def version_string(self) -> str:
        return "chlocal"
    timeout = 300
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s - %s", self.address_string(), format % args)

    # ---- plumbing -------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("unexpected end of chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(parts)
        length = self.headers.get("Content-Length")
        if length:
            n = int(length)
            data = self.rfile.read(n)
            if len(data) != n:
                raise ConnectionError("short body")
            return data
        return b""

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]], head_only: bool = False) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "Close")
        else:
            self.send_header("Connection", "Keep-Alive")
            self.send_header("Keep-Alive", "timeout=30")
        self.end_headers()
        if not head_only and body:
            self.wfile.write(body)

    def _send_error(self, code: int, text: str, query_id: str | None) -> None:
        """sendExceptionToHTTPClient: status from the code, X-ClickHouse-Exception-Code, body = message + '\n'."""
        status = self.server.status_by_code.get(code, 500)
        headers = [("Content-Type", "text/plain; charset=UTF-8"),
                   ("X-ClickHouse-Server-Display-Name", self.server.display_name),
                   ("X-ClickHouse-Exception-Code", str(code)),
                   ("X-ClickHouse-Exception-Tag", self._tag())]
        if query_id:
            headers.insert(0, ("X-ClickHouse-Query-Id", query_id))
        if code == self.server.codes.get("REQUIRED_PASSWORD"):
            headers.append(("WWW-Authenticate", 'Basic realm="ClickHouse server HTTP API"'))
        if not text.endswith("\n"):
            text += "\n"
        self._send(status, text.encode("utf-8", "replace"), headers, self.command == "HEAD")

    def _tag(self) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(secrets.choice(alphabet) for _ in range(16))

    def _error_text(self, name: str, message: str) -> tuple[int, str]:
        code = self.server.codes.get(name, 1002)
        return code, "Code: %d. DB::Exception: %s. (%s) (version %s)" % (code, message, name, self.server.version)

    def _engine_error(self, raw: str) -> tuple[int, str]:
        m = ERROR_RE.match(raw)
        text = raw.rstrip("\n")
        while True:
            w = WRAPPED_ERROR_RE.match(text)
            if not w:
                break
            text = w.group(2)
        if not m:
            return self._error_text("UNKNOWN_EXCEPTION", text)
        if "(version " not in text[-40:]:
            text = "%s (version %s)" % (text, self.server.version)
        return int(m.group(1)), text

    # ---- verbs ----------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._send(204, b"", [])

    def _handle(self) -> None:
        try:
            self._handle_inner()
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001
            log.exception("internal error")
            code, text = self._error_text("UNKNOWN_EXCEPTION", "chlocal internal error: %s" % e)
            try:
                self._send_error(code, text, None)
            except OSError:
                self.close_connection = True

    def _handle_inner(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        pmap: dict[str, str] = {}
        for k, v in params:
            pmap[k] = v
        body = self._read_body() if self.command == "POST" else b""
        head_only = self.command == "HEAD"

        if path in ("/ping", "/replicas_status") and self.command in ("GET", "HEAD"):
            self._send(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")], head_only)
            return
        if path != "/":
            msg = ("There is no handle %s\n\nUse / or /ping for health checks.\nOr /replicas_status for more "
                   "sophisticated health checks.\n\nSend queries from your program with POST method or GET "
                   "/?query=...\n\nUse clickhouse-client:\n\nFor interactive data analysis:\n    clickhouse-client\n"
                   % path)
            self._send(404, msg.encode(), [("Content-Type", "text/plain; charset=UTF-8")], head_only)
            return
        if self.command in ("GET", "HEAD") and "query" not in pmap:
            self._send(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")], head_only)
            return

        query_id = pmap.get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        try:
            self._run_query(params, pmap, body, query_id)
        except ClickHouseError as e:
            if e.code is not None:
                self._send_error(e.code, e.message, query_id)
            else:
                code, text = self._error_text(e.code_name, e.message)
                self._send_error(code, text, query_id)

    def _authenticate(self, pmap: dict[str, str]) -> User:
        h_user = self.headers.get("X-ClickHouse-User", "")
        h_key = self.headers.get("X-ClickHouse-Key", "")
        auth = self.headers.get("Authorization", "")
        has_headers = bool(h_user or h_key)
        has_params = "user" in pmap or "password" in pmap
        if has_headers and (auth or has_params):
            raise ClickHouseError("AUTHENTICATION_FAILED", "Invalid authentication: it is not allowed to use "
                                  "X-ClickHouse HTTP headers and other authentication methods simultaneously")
        if auth and has_params:
            raise ClickHouseError("AUTHENTICATION_FAILED", "Invalid authentication: it is not allowed to use "
                                  "Authorization HTTP header and authentication via parameters simultaneously")
        if has_headers:
            name, password = h_user or "default", h_key
        elif auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                raise ClickHouseError("AUTHENTICATION_FAILED", "Invalid authentication: '%s' HTTP Authorization "
                                      "scheme is not supported" % scheme)
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except Exception as e:  # noqa: BLE001
                raise ClickHouseError("AUTHENTICATION_FAILED", "Invalid authentication: malformed basic credentials") from e
            name, _, password = decoded.partition(":")
        else:
            name, password = pmap.get("user", "default") or "default", pmap.get("password", "")
        user = self.server.users.get(name)
        if user is None or not secrets.compare_digest(user.password.encode(), password.encode()):
            raise ClickHouseError("AUTHENTICATION_FAILED",
                                  "%s: Authentication failed: password is incorrect, or there is no user with such name"
                                  % name)
        return user

    def _run_query(self, params: list[tuple[str, str]], pmap: dict[str, str], body: bytes, query_id: str) -> None:
        t0 = time.monotonic()
        user = self._authenticate(pmap)

        # Request body: Content-Encoding first, then ClickHouse's native compression (decompress=1).
        body = decode_content_encoding(body, self.headers.get("Content-Encoding", ""))
        settings: list[tuple[str, str]] = list(user.settings.items())
        query_params: list[list[str]] = []
        database = self.headers.get("X-ClickHouse-Database", "")
        default_format = self.headers.get("X-ClickHouse-Format", "")
        readonly = user.readonly
        if self.command == "GET" and readonly == 0:
            readonly = 2  # HTTPHandler: only readonly queries are allowed for HTTP GET requests.
        url_settings: list[tuple[str, str]] = []
        for key, value in params:
            if key == "database":
                if not database:
                    database = value
            elif key == "default_format":
                if not default_format:
                    default_format = value
            elif key.startswith("param_"):
                query_params.append([key[len("param_"):], value])
            elif not key or key in RESERVED_PARAMS:
                continue
            elif key == "readonly":
                try:
                    wanted = int(value)
                except ValueError as e:
                    raise ClickHouseError("CANNOT_PARSE_NUMBER", "Cannot parse readonly value '%s'" % value) from e
                if user.readonly == 1 or (user.readonly == 2 and wanted != user.readonly):
                    raise ClickHouseError("READONLY", "Cannot modify 'readonly' setting in readonly mode")
                readonly = max(readonly, wanted)
            else:
                url_settings.append((key, value))
        if user.readonly == 1 and url_settings:
            raise ClickHouseError("READONLY", "Cannot modify '%s' setting in readonly mode" % url_settings[0][0])
        settings.extend(url_settings)

        if truthy(pmap.get("decompress")):
            verify = not truthy(dict(settings).get("http_native_compression_disable_checksumming_on_decompress"))
            body = decode_native_compressed(body, verify)

        # HTTPHandler concatenates the `query` parameter and the body (ConcatReadBuffer), nothing between.
        query_bytes = pmap.get("query", "").encode("utf-8") + body
        if not query_bytes.strip():
            raise ClickHouseError("SYNTAX_ERROR", "Empty query")
        head_text = query_bytes[:1 << 16].decode("utf-8", "replace")
        is_insert = bool(INSERT_RE.match(head_text))

        if not is_insert:
            full_text = query_bytes.decode("utf-8", "replace")
            pos = multi_statement_position(full_text)
            if pos >= 0:
                raise ClickHouseError("SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): failed at "
                                      "position %d (end of query): %s" % (pos + 1, full_text[pos:pos + 50]))
        if readonly > 0:
            kw = first_keyword(head_text)
            if kw not in READ_ONLY_KEYWORDS and not (kw == "SET" and readonly == 2):
                suffix = ""
                if self.command == "GET" and user.readonly == 0:
                    suffix = (". For queries over HTTP, method GET implies readonly. You should use method POST "
                              "for modifying queries")
                raise ClickHouseError("READONLY", "%s: Cannot execute query in readonly mode%s" % (user.name, suffix))

        # async_insert with data in the request is run synchronously: chDB refuses async inserts with
        # inline data (code 48), and a synchronous insert is a strict superset of what callers observe.
        eff = dict(settings)
        if is_insert and truthy(eff.get("async_insert")):
            settings = [(k, v) for k, v in settings if k not in ("async_insert", "wait_for_async_insert")]
            if not truthy(eff.get("async_insert_deduplicate")):
                settings = [(k, v) for k, v in settings if k != "insert_deduplication_token"]
        out_format = default_format or "TabSeparated"
        if not is_insert:
            m = FORMAT_TAIL_RE.search(head_text if len(query_bytes) <= (1 << 16) else "")
            if m:
                out_format = m.group(1)
        timezone = eff.get("session_timezone") or self.server.timezone

        log.debug("query %s user=%s db=%s settings=%s: %s", query_id, user.name, database or "default",
                  dict(settings), head_text[:200].replace("\n", " "))
        header: dict[str, Any] = {"database": database or None, "settings": [list(s) for s in settings],
                                  "params": query_params, "format": default_format or "TabSeparated",
                                  "check_session": bool(SET_RE.search(query_bytes[:1 << 16]))}
        payload = query_bytes
        if is_insert and not query_params:
            split = split_insert(pmap.get("query", "").encode("utf-8"), body)
            if split is not None:
                header["insert"] = {"query": split[0], "format": split[1]}
                header["check_session"] = bool(SET_RE.search(split[0].encode()))
                payload = split[2]
        try:
            resp, data = self.server.engine.call(header, payload)
        except EngineDied as e:
            code, text = self._error_text("UNKNOWN_EXCEPTION", str(e))
            self._send_error(code, text, query_id)
            return
        if resp.get("error"):
            code, text = self._engine_error(resp["error"])
            log.debug("query %s failed: %s", query_id, text[:300])
            self._send_error(code, text, query_id)
            return

        rows_written = int(resp.get("rows_written", 0))
        if is_insert and not resp.get("rows_read"):
            resp["rows_read"], resp["bytes_read"] = rows_written, resp.get("bytes_written", 0)
        elapsed = time.monotonic() - t0
        summary = {
            "read_rows": str(resp.get("rows_read", 0)),
            "read_bytes": str(resp.get("bytes_read", 0)),
            "written_rows": str(rows_written),
            "written_bytes": str(resp.get("bytes_written", 0)),
            "total_rows_to_read": str(resp.get("rows_read", 0)),
            "result_rows": str(rows_written if is_insert else 0),
            "result_bytes": str(resp.get("bytes_written", 0) if is_insert else 0),
            "elapsed_ns": str(int(elapsed * 1e9)),
            "memory_usage": "0",
            "real_time_microseconds": str(int(elapsed * 1e6)),
        }
        headers = [
            ("X-ClickHouse-Query-Id", query_id),
            ("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":"))),
            ("Content-Type", content_type_for(out_format)),
            ("X-ClickHouse-Server-Display-Name", self.server.display_name),
            ("X-ClickHouse-Format", out_format),
            ("X-ClickHouse-Timezone", timezone),
            ("X-ClickHouse-Exception-Tag", self._tag()),
            ("Access-Control-Expose-Headers", "X-ClickHouse-Query-Id,X-ClickHouse-Summary,X-ClickHouse-Server-Display-Name,"
                                              "X-ClickHouse-Format,X-ClickHouse-Timezone,X-ClickHouse-Exception-Code,"
                                              "X-ClickHouse-Exception-Tag"),
        ]
        if truthy(pmap.get("compress")):
            data = encode_native_compressed(data)
        if truthy(eff.get("enable_http_compression")):
            method = choose_response_encoding(self.headers.get("Accept-Encoding", ""))
            if method:
                try:
                    level = int(eff.get("http_zlib_compression_level", "3"))
                except ValueError:
                    level = 3
                data = encode_response(data, method, level)
                headers.append(("Content-Encoding", method))
        self._send(200, data, headers, self.command == "HEAD")


# --------------------------------------------------------------------------------------------
def find_libchdb() -> str:
    env = os.environ.get("CHLOCAL_LIBCHDB")
    if env:
        return env
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    cand = os.path.join(root, "node_modules", "@chdb", "lib-linux-x64-gnu", "libchdb.so")
    if os.path.exists(cand):
        return cand
    raise SystemExit("libchdb.so not found; run scripts/chlocal.sh install (or set CHLOCAL_LIBCHDB)")


CONFIG_XML = """<clickhouse>
    <!-- written by chlocal; ClickHouse Cloud's SharedMergeTree deduplicates inserts by default:
         give plain MergeTree tables created here the same behaviour. -->
    <merge_tree>
        <non_replicated_deduplication_window>1000</non_replicated_deduplication_window>
    </merge_tree>
    <display_name>{display_name}</display_name>
    <timezone>UTC</timezone>
</clickhouse>
"""


def main() -> int:
    ap = argparse.ArgumentParser(description="ClickHouse HTTP interface over chDB (dev/test only)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--users", help="JSON file: [{name, password, settings?, readonly?}]")
    ap.add_argument("--user", action="append", default=[], help="name:password (repeatable)")
    ap.add_argument("--display-name", default="chlocal")
    ap.add_argument("--log-level", default=os.environ.get("CHLOCAL_LOG_LEVEL", "DEBUG"))
    args = ap.parse_args()

    d = os.path.abspath(args.dir)
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    logging.basicConfig(filename=os.path.join(d, "chlocal.log"), level=getattr(logging, args.log_level.upper(), logging.DEBUG),
                        format="%(asctime)s %(levelname)s %(threadName)s %(message)s")
    config_file = os.path.join(d, "config.xml")
    with open(config_file, "w") as f:
        f.write(CONFIG_XML.format(display_name=args.display_name))
    users = load_users(args.users, args.user)
    t0 = time.monotonic()
    engine = Engine(find_libchdb(), os.path.join(d, "data"), config_file, d)
    server = Server((args.host, args.port), engine, users)
    port = server.server_address[1]
    url = "http://%s:%d" % (args.host, port)
    for name, content in (("pid", str(os.getpid())), ("url", url), ("port", str(port))):
        tmp = os.path.join(d, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content + "\n")
        os.replace(tmp, os.path.join(d, name))
    log.info("listening on %s (engine up in %.2fs)", url, time.monotonic() - t0)
    print(url, flush=True)

    def on_signal(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.stop()
        for name in ("pid", "url", "port", "engine.pid"):
            try:
                os.remove(os.path.join(d, name))
            except FileNotFoundError:
                pass
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
