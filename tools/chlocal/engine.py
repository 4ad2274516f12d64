"""chlocal engine worker: hosts one chDB (ClickHouse as a library) connection.

Started by server.py as a child process, with standard input redirected from /dev/null (like
clickhouse-local, chDB reads stdin as external data for INSERT queries) and a socket inherited on
the file descriptor given by --fd. The server sends one request at a time and waits for its answer;
if this process dies (a crash inside the engine), the server answers that request with an error
and starts a new worker, so a crash never takes the HTTP server down.

Wire format (both directions): 4-byte big-endian header length, JSON header, 8-byte big-endian
payload length, payload bytes.

Request header: {"database": str|null, "settings": [[name, value], ...], "params": [[name, value], ...],
                 "format": str, "check_session": bool}
Request payload: the full query text, with inline INSERT data (any bytes).
Response header: {"error": str|null, "rows_read", "bytes_read", "rows_written", "bytes_written", "elapsed"}
Response payload: the result bytes.

Settings are session-wide in chDB (one engine, one session), so per-request settings are applied
with SET before the query and put back to the baseline after it; the server serializes requests.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import socket
import struct
import sys
from typing import Any

# Settings whose chDB defaults differ from a ClickHouse server's (26.7), put back to the server's
# values so queries behave as on ClickHouse Cloud. Found by comparing chDB's system.settings with
# upstream src/Core/Settings.cpp / FormatFactorySettings.h and clickhouse-local's
# applySettingsOverridesForLocal(); not exhaustive (see docs/local-stack.md).
#  async_insert: chDB 1 (and INSERTs with inline data then fail with code 48); server 0.
#  implicit_select, allow_introspection_functions: clickhouse-local conveniences; server 0.
#  date_time_input_format: chDB best_effort; server basic.
#  output_format_json_quote_64bit_integers: chDB 0; server 1 (UInt64 as "123" in JSON).
#  mutations_sync: chDB 1; server 0.  precise_float_parsing: chDB 1; server 0.
BASELINE_SETTINGS = [
    ("async_insert", "0"),
    ("implicit_select", "0"),
    ("allow_introspection_functions", "0"),
    ("date_time_input_format", "basic"),
    ("output_format_json_quote_64bit_integers", "1"),
    ("mutations_sync", "0"),
    ("precise_float_parsing", "0"),
]

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Chdb:
    def __init__(self, lib_path: str, argv: list[str]) -> None:
        lib = ctypes.CDLL(lib_path)
        lib.chdb_connect.restype = ctypes.POINTER(ctypes.c_void_p)
        lib.chdb_connect.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.chdb_close_conn.restype = None
        lib.chdb_close_conn.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        lib.chdb_query_n.restype = ctypes.c_void_p
        lib.chdb_query_n.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        lib.chdb_query_with_params_n.restype = ctypes.c_void_p
        lib.chdb_query_with_params_n.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t),
            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
        ]
        for name in ("chdb_result_length", "chdb_result_rows_read", "chdb_result_bytes_read",
                     "chdb_result_rows_written", "chdb_result_bytes_written"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_uint64
            fn.argtypes = [ctypes.c_void_p]
        lib.chdb_result_buffer.restype = ctypes.c_void_p
        lib.chdb_result_buffer.argtypes = [ctypes.c_void_p]
        lib.chdb_result_error.restype = ctypes.c_char_p
        lib.chdb_result_error.argtypes = [ctypes.c_void_p]
        lib.chdb_result_elapsed.restype = ctypes.c_double
        lib.chdb_result_elapsed.argtypes = [ctypes.c_void_p]
        lib.chdb_destroy_query_result.restype = None
        lib.chdb_destroy_query_result.argtypes = [ctypes.c_void_p]
        lib.chdb_stream_insert_n.restype = ctypes.c_void_p
        lib.chdb_stream_insert_n.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        lib.chdb_stream_insert_error.restype = ctypes.c_char_p
        lib.chdb_stream_insert_error.argtypes = [ctypes.c_void_p]
        lib.chdb_stream_append.restype = ctypes.c_int
        lib.chdb_stream_append.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.chdb_stream_done.restype = ctypes.c_void_p
        lib.chdb_stream_done.argtypes = [ctypes.c_void_p]
        lib.chdb_destroy_insert_stream.restype = None
        lib.chdb_destroy_insert_stream.argtypes = [ctypes.c_void_p]
        self.lib = lib
        args = [a.encode() for a in argv]
        c_argv = (ctypes.c_char_p * len(args))(*args)
        self.conn_ptr = lib.chdb_connect(len(args), c_argv)
        if not self.conn_ptr:
            raise RuntimeError("chdb_connect failed for argv %r" % (argv,))
        self.conn = self.conn_ptr[0]
        if not self.conn:
            raise RuntimeError("chdb_connect returned an empty connection for argv %r" % (argv,))

    def close(self) -> None:
        if self.conn_ptr:
            self.lib.chdb_close_conn(self.conn_ptr)
            self.conn_ptr = None

    def insert(self, sql: bytes, fmt: str, data: bytes, chunk: int = 1 << 20) -> dict[str, Any]:
        """Streaming INSERT: `sql` without FORMAT, `data` in format `fmt`, passed through byte for byte."""
        fmt_b = fmt.encode()
        stream = self.lib.chdb_stream_insert_n(self.conn, sql, len(sql), fmt_b, len(fmt_b))
        if not stream:
            return {"error": "Code: 1002. DB::Exception: chDB returned no insert stream. (UNKNOWN_EXCEPTION)", "data": b""}
        try:
            err = self.lib.chdb_stream_insert_error(stream)
            if err is not None:
                return {"error": err.decode("utf-8", "replace"), "data": b""}
            view = memoryview(data)
            for off in range(0, len(data), chunk):
                piece = bytes(view[off:off + chunk])
                if self.lib.chdb_stream_append(stream, piece, len(piece)) != 0:
                    break
            res = self.lib.chdb_stream_done(stream)
            if not res:
                err = self.lib.chdb_stream_insert_error(stream)
                msg = err.decode("utf-8", "replace") if err is not None else "Code: 1002. DB::Exception: insert failed. (UNKNOWN_EXCEPTION)"
                return {"error": msg, "data": b""}
            out = self._result(res)
            if not out["error"]:
                err = self.lib.chdb_stream_insert_error(stream)
                if err is not None:
                    out["error"] = err.decode("utf-8", "replace")
            return out
        finally:
            self.lib.chdb_destroy_insert_stream(stream)

    def _result(self, res: int) -> dict[str, Any]:
        try:
            err = self.lib.chdb_result_error(res)
            n = self.lib.chdb_result_length(res)
            ptr = self.lib.chdb_result_buffer(res)
            data = ctypes.string_at(ptr, n) if (n and ptr) else b""
            return {
                "error": err.decode("utf-8", "replace") if err is not None else None,
                "data": data,
                "rows_read": self.lib.chdb_result_rows_read(res),
                "bytes_read": self.lib.chdb_result_bytes_read(res),
                "rows_written": self.lib.chdb_result_rows_written(res),
                "bytes_written": self.lib.chdb_result_bytes_written(res),
                "elapsed": self.lib.chdb_result_elapsed(res),
            }
        finally:
            self.lib.chdb_destroy_query_result(res)

    def query(self, sql: bytes, fmt: str = "TabSeparated", params: list[list[str]] | None = None) -> dict[str, Any]:
        fmt_b = fmt.encode()
        if params:
            n = len(params)
            names = [p[0].encode() for p in params]
            values = [p[1].encode() for p in params]
            c_names = (ctypes.c_char_p * n)(*names)
            c_name_lens = (ctypes.c_size_t * n)(*[len(x) for x in names])
            c_values = (ctypes.c_char_p * n)(*values)
            c_value_lens = (ctypes.c_size_t * n)(*[len(x) for x in values])
            res = self.lib.chdb_query_with_params_n(self.conn, sql, len(sql), fmt_b, len(fmt_b),
                                                     c_names, c_name_lens, c_values, c_value_lens, n)
        else:
            res = self.lib.chdb_query_n(self.conn, sql, len(sql), fmt_b, len(fmt_b))
        if not res:
            return {"error": "Code: 1002. DB::Exception: chDB returned no result. (UNKNOWN_EXCEPTION)", "data": b""}
        return self._result(res)

    def must(self, sql: str) -> bytes:
        r = self.query(sql.encode())
        if r["error"]:
            raise RuntimeError("%s: %s" % (sql, r["error"]))
        return r["data"]


class Session:
    """Keeps chDB's single session at a known baseline between requests."""

    def __init__(self, db: Chdb) -> None:
        self.db = db
        for name, value in BASELINE_SETTINGS:
            db.must("SET %s = %s" % (name, sql_string(value)))
        # name -> value for every setting changed from its default in the baseline.
        self.baseline_changed: dict[str, str] = self._changed()
        self.current_db = db.must("SELECT currentDatabase()").decode().strip()

    def _changed(self) -> dict[str, str]:
        out: dict[str, str] = {}
        raw = self.db.must("SELECT name, value FROM system.settings WHERE changed FORMAT JSONCompactEachRow")
        for line in raw.decode().splitlines():
            if line.strip():
                name, value = json.loads(line)
                out[name] = value
        return out

    def _reset(self, name: str) -> None:
        if name in self.baseline_changed:
            self.db.query(("SET %s = %s" % (sql_ident(name), sql_string(self.baseline_changed[name]))).encode())
        else:
            self.db.query(("SET %s = DEFAULT" % sql_ident(name)).encode())

    def restore_all(self) -> None:
        now = self._changed()
        for name, value in now.items():
            if self.baseline_changed.get(name) != value:
                self._reset(name)
        for name in self.baseline_changed:
            if name not in now:
                self._reset(name)
        self.current_db = self.db.must("SELECT currentDatabase()").decode().strip()

    def run(self, header: dict[str, Any], sql: bytes) -> dict[str, Any]:
        applied: list[str] = []
        try:
            database = header.get("database") or "default"
            if database != self.current_db:
                r = self.db.query(("USE %s" % sql_ident(database)).encode())
                if r["error"]:
                    return r
                self.current_db = database
            for name, value in header.get("settings", []):
                if not IDENT_RE.match(name):
                    return {"error": "Code: 115. DB::Exception: Unknown setting '%s'. (UNKNOWN_SETTING)" % name, "data": b""}
                applied.append(name)
                r = self.db.query(("SET %s = %s" % (name, sql_string(value))).encode())
                if r["error"]:
                    return r
            insert = header.get("insert")
            if insert:
                return self.db.insert(insert["query"].encode(), insert["format"], sql)
            return self.db.query(sql, header.get("format") or "TabSeparated", header.get("params") or None)
        finally:
            for name in applied:
                self._reset(name)
            if header.get("check_session"):
                self.restore_all()


def read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return bytes(buf)


def send_frame(sock: socket.socket, header: dict[str, Any], payload: bytes) -> None:
    h = json.dumps(header).encode()
    sock.sendall(struct.pack(">I", len(h)) + h + struct.pack(">Q", len(payload)))
    if payload:
        sock.sendall(payload)


def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    raw = read_exact(sock, 4)
    if raw is None:
        return None
    (hlen,) = struct.unpack(">I", raw)
    h = read_exact(sock, hlen)
    if h is None:
        return None
    raw = read_exact(sock, 8)
    if raw is None:
        return None
    (plen,) = struct.unpack(">Q", raw)
    payload = read_exact(sock, plen) if plen else b""
    if payload is None:
        return None
    return json.loads(h), payload


def set_parent_death_signal() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--config-file", required=True)
    args = ap.parse_args()
    set_parent_death_signal()
    sock = socket.socket(fileno=args.fd)
    db = Chdb(args.lib, ["chdb", "--path=" + args.path, "--config-file=" + args.config_file])
    session = Session(db)
    version = db.must("SELECT version()").decode().strip()
    timezone = db.must("SELECT timezone()").decode().strip()
    display_name = db.must("SELECT displayName()").decode().strip()
    codes: dict[str, int] = {}
    raw = db.must("SELECT errorCodeToName(number), number FROM numbers(5000) WHERE errorCodeToName(number) != ''")
    for line in raw.decode().splitlines():
        name, code = line.split("\t")
        codes[name] = int(code)
    send_frame(sock, {"ready": True, "version": version, "timezone": timezone,
                      "display_name": display_name, "error_codes": codes}, b"")
    class Stop(Exception):
        pass

    def on_term(_signum: int, _frame: object) -> None:
        raise Stop()

    # SIGTERM (sent by the server, or as parent-death signal) ends the loop between requests;
    # a running query finishes first (Python runs handlers between C calls).
    signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            frame = recv_frame(sock)
            if frame is None:
                break
            header, sql = frame
            if header.get("op") == "shutdown":
                break
            try:
                r = session.run(header, sql)
            except Stop:
                raise
            except Exception as e:  # noqa: BLE001 - report, keep serving
                r = {"error": "Code: 1001. DB::Exception: chlocal engine: %s. (STD_EXCEPTION)" % e, "data": b""}
            data = r.pop("data", b"")
            send_frame(sock, r, data)
    except (Stop, OSError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
