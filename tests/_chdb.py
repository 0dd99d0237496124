"""ClickHouse for the tests: chDB behind tests/chdb_server.py, the exporter's table, spans loaded as it writes them.

The engine runs in its own venv (``scripts/install-chdb.sh``; .ci/run starts
that install in the background and the tests wait for it, as for Phoenix).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _util import ROOT, wait_for_ci_job
from fixtures.clickhouse_rows import insert_sql, json_lines

CHDB_VENV = Path(
    os.environ.get("ALEPHANT_CHDB_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alephant-otel" / "venv-chdb"
)
CHDB_MARKER = CHDB_VENV / "alephant-chdb-installed"
INSTALL_WAIT_S = 900.0
DDL_TEMPLATE = ROOT / "collector-config" / "clickhouse" / "exporter_traces_table.sql.tmpl"
ROLLUP_SQL = ROOT / "collector-config" / "clickhouse" / "sessions_rollup.sql"
USER = "alephant"
PASSWORD = "s3cret-pw-9f2"


def chdb_missing() -> str | None:
    """Why the ClickHouse tests cannot run here, or None."""
    install = wait_for_ci_job("chdb", INSTALL_WAIT_S)
    if install == "timeout":
        return f"the background chDB install was still running after {INSTALL_WAIT_S:.0f} s"
    if not CHDB_MARKER.is_file():
        return f"chDB is not installed in {CHDB_VENV}: run scripts/install-chdb.sh"
    return None


def exporter_ddl(database: str = "otel", table: str = "otel_traces", ttl: str = "") -> str:
    """The exporter's CREATE TABLE, rendered as the exporter renders it (no cluster, MergeTree())."""
    text = "\n".join(line for line in DDL_TEMPLATE.read_text().splitlines() if not line.startswith("--"))
    return text % (database, table, "", "MergeTree()", ttl)


class ChServer:
    """chDB served over ClickHouse's HTTP interface on loopback, in a subprocess."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.query_log = workdir / "queries.jsonl"
        port_file = workdir / "port"
        self.log = workdir / "server.log"
        self._log_fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                str(CHDB_VENV / "bin" / "python"),
                str(ROOT / "tests" / "chdb_server.py"),
                str(workdir / "db"),
                str(port_file),
                "--user",
                USER,
                "--password",
                PASSWORD,
                "--log",
                str(workdir / "queries.jsonl"),
            ],
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chdb_server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def url(self, database: str = "otel", table: str | None = None, *, password: bool = False) -> str:
        """A ``--source`` for this server."""
        auth = f"{USER}:{PASSWORD}@" if password else ""
        q = f"?table={table}" if table else ""
        return f"clickhouse+http://{auth}127.0.0.1:{self.port}/{database}{q}"

    def sql(
        self, statement: str, body: bytes = b"", params: Mapping[str, Any] | None = None, timeout: float = 120
    ) -> str:
        """Run one statement over HTTP (basic auth), the result as text."""
        qs: dict[str, Any] = {"query": statement} if body else {}
        qs.update({f"param_{k}": v for k, v in (params or {}).items()})
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/?{urlencode(qs)}",
            data=body or statement.encode(),
            headers={"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(exc.read().decode()) from None

    def sql_to_file(self, statement: str, path: Path, timeout: float = 3600) -> None:
        """Run one statement, its answer streamed into ``path`` (never all in memory)."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/",
            data=statement.encode(),
            headers={"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp, path.open("wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)

    def create(self, database: str = "otel", table: str = "otel_traces") -> None:
        """The database and the exporter's table, as the exporter creates them at start."""
        self.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.sql(exporter_ddl(database, table))

    def load(self, rows: Iterable[Mapping[str, Any]], database: str = "otel", table: str = "otel_traces") -> None:
        """Insert exporter rows (``fixtures.clickhouse_rows``)."""
        body = json_lines(rows)
        if body.strip():
            self.sql(insert_sql(database, table), body)

    def add_rollup(self, database: str = "otel", table: str = "otel_traces", timeout: float = 120) -> None:
        """The roll-up of collector-config/clickhouse/sessions_rollup.sql, then its back-fill."""
        text = ROLLUP_SQL.read_text().replace("otel.otel_traces", f"{database}.{table}")
        for stmt in _statements(text):
            self.sql(stmt, timeout=timeout)

    def drop_rollup(self, database: str = "otel", table: str = "otel_traces") -> None:
        self.sql(f"DROP VIEW IF EXISTS {database}.{table}_sessions_mv")
        self.sql(f"DROP TABLE IF EXISTS {database}.{table}_sessions")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_fh.close()


def _statements(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def python() -> str:
    return sys.executable
