"""chlocal launcher: hosts ONE real ClickHouse server (HTTP + native TCP) in this process, for
development and tests only; production talks to ClickHouse Cloud or a ClickHouse cluster.

It writes DIR/config.xml and DIR/users.xml from the instance spec, then calls libchdb's exported
chdb_query_cmdline(argc, argv), which runs clickhouse-local's full LocalServer: its
`SYSTEM START LISTEN HTTP|TCP` starts ClickHouse's own HTTPHandler/TCPHandler, which live as long as
that call, so the call is kept open by a query that never ends. Ending this process (SIGTERM, then
SIGKILL) stops the server. Standard library only; no HTTP code of ours. See tools/chlocal/README.md.
"""
import argparse, ctypes, hashlib, json, os, secrets, sys
from xml.sax.saxutils import escape

ADMIN = "chlocal_admin"  # full rights; test helpers run their set-up/checks as this user
# Settings whose defaults in libchdb differ from a ClickHouse 26.7 server's, put back in every profile:
# chDB's own defaults (async_insert 1, mutations_sync 1, date_time_input_format best_effort,
# output_format_json_quote_64bit_integers 0, precise_float_parsing 1) and clickhouse-local's overrides
# (applySettingsOverridesForLocal: implicit_select, allow_introspection_functions, storage_file_read_method,
# output_format_arrow_use_native_writer). Not exhaustive: see tools/chlocal/README.md.
SERVER_DEFAULTS = {"async_insert": "0", "mutations_sync": "0", "date_time_input_format": "basic",
                   "output_format_json_quote_64bit_integers": "1", "precise_float_parsing": "0",
                   "implicit_select": "0", "allow_introspection_functions": "0",
                   "storage_file_read_method": "pread", "output_format_arrow_use_native_writer": "1"}
KEEP_OPEN = ("SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
             "SELECT sleepEachRow(1) FROM numbers(1000000000) SETTINGS max_block_size=1 FORMAT Null")
LOOPBACK = "<networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"


def users_xml(users: list, admin_password: str) -> str:
    by_name = {u["name"]: u for u in users}
    if by_name.get("default", {}).get("password"):
        sys.exit("chlocal: user `default` must have an empty password: the launcher's local session logs in as it")
    if "default" not in by_name:  # exists only for the launcher's session: it may start listeners, nothing else
        by_name["default"] = {"name": "default", "password": "", "grants": ["GRANT SYSTEM LISTEN ON *.*"]}
    by_name[ADMIN] = {"name": ADMIN, "password": admin_password, "admin": True}
    profiles, entries = [], []
    for i, u in enumerate(by_name.values()):
        settings = dict(SERVER_DEFAULTS, **{k: str(v) for k, v in (u.get("settings") or {}).items()})
        if u.get("readonly"):
            settings["readonly"] = str(u["readonly"])
        profiles.append("<p%d>%s</p%d>" % (i, "".join("<%s>%s</%s>" % (k, escape(v), k) for k, v in settings.items()), i))
        auth = ("<password_sha256_hex>%s</password_sha256_hex>" % hashlib.sha256(u["password"].encode()).hexdigest()
                if u["password"] else "<no_password/>")
        grants = "".join("<query>%s</query>" % escape(g) for g in u.get("grants", []))
        extra = "<grants>%s</grants>" % grants if grants else ""
        if u.get("admin"):
            extra += "<access_management>1</access_management><named_collection_control>1</named_collection_control>"
        entries.append("<%s>%s%s<profile>p%d</profile><quota>q</quota>%s</%s>" % (u["name"], auth, LOOPBACK, i, extra, u["name"]))
    return ("<clickhouse><profiles><default>%s</default>%s</profiles><users>%s</users><quotas><q/></quotas></clickhouse>\n"
            % ("".join("<%s>%s</%s>" % (k, v, k) for k, v in SERVER_DEFAULTS.items()), "".join(profiles), "".join(entries)))


def config_xml(d: str, http_port: int, tcp_port: int, display_name: str) -> str:
    # keep_alive_timeout < 5 s: at shutdown ClickHouse waits 5 s for open connections (chdb-notes caveat 1),
    # and above @clickhouse/client's idle_socket_ttl (2.5 s) so pooled sockets are not reused as they close.
    # non_replicated_deduplication_window: plain MergeTree deduplicates inserts like Cloud's SharedMergeTree.
    return ("<clickhouse><listen_host>127.0.0.1</listen_host><http_port>%d</http_port><tcp_port>%d</tcp_port>"
            "<logger><log>%s/clickhouse-server.log</log><errorlog>%s/clickhouse-server.err.log</errorlog>"
            "<size>50M</size><count>2</count></logger>"
            "<keep_alive_timeout>4</keep_alive_timeout><users_config>users.xml</users_config>"
            "<display_name>%s</display_name><timezone>UTC</timezone>"
            "<query_log><database>system</database><table>query_log</table></query_log>"
            "<merge_tree><non_replicated_deduplication_window>1000</non_replicated_deduplication_window></merge_tree>"
            "</clickhouse>\n" % (http_port, tcp_port, escape(d), escape(d), escape(display_name)))


def write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.chmod(path + ".tmp", mode)
    os.replace(path + ".tmp", path)


def main() -> int:
    ap = argparse.ArgumentParser(description="one real ClickHouse server over libchdb (dev/test only)")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lib", required=True, help="libchdb.so")
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--users", help="JSON file: [{name, password, settings?, readonly?}]")
    ap.add_argument("--user", action="append", default=[], help="name:password (repeatable)")
    ap.add_argument("--display-name", default="chlocal")
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    users = json.load(open(a.users)) if a.users else []
    users += [dict(zip(("name", "password"), u.split(":", 1))) for u in a.user]
    if not users:
        users = [{"name": "default", "password": ""}]
    pw_file = os.path.join(d, "admin_password")
    if not os.path.exists(pw_file):
        write(pw_file, secrets.token_hex(16), 0o600)
    write(os.path.join(d, "users.xml"), users_xml(users, open(pw_file).read().strip()))
    write(os.path.join(d, "config.xml"), config_xml(d, a.http_port, a.tcp_port, a.display_name))
    write(os.path.join(d, "pid"), "%d\n" % os.getpid())
    argv = [s.encode() for s in ("clickhouse", "--config-file=" + os.path.join(d, "config.xml"),
                                 "--path=" + os.path.join(d, "data") + "/",
                                 "--log-level=" + os.environ.get("CHLOCAL_LOG_LEVEL", "warning"), "--query=" + KEEP_OPEN)]
    lib = ctypes.CDLL(a.lib)
    lib.chdb_query_cmdline.restype = ctypes.c_void_p
    lib.chdb_result_error.restype, lib.chdb_result_error.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    result = lib.chdb_query_cmdline(len(argv), (ctypes.c_char_p * len(argv))(*argv))
    # Only reached if the server could not start (e.g. a port in use) or was stopped by a signal.
    error = lib.chdb_result_error(result) if result else None
    print("chlocal: server ended: %s" % (error.decode(errors="replace") if error else "no error reported"), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
