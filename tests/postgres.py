"""A private, throw-away PostgreSQL server for tests (Debian's `postgresql` package, no mock).

`make test` installs the package (Makefile `system-deps`); `postgres_server()` initdb's a cluster
in a temporary folder, starts it on a Unix socket in that folder (no TCP port to collide with),
creates a database and yields its SQLAlchemy URL; the server is stopped and removed afterwards.
When run as root (CI), the cluster belongs to the `postgres` system user, as initdb refuses root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bindir() -> Path | None:
    """Newest /usr/lib/postgresql/<version>/bin with initdb, or None."""
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    versions = sorted((p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
                      key=lambda p: int(p.name) if p.name.isdigit() else 0)
    return versions[-1] / "bin" if versions else None


def unavailable_reason() -> str | None:
    if pg_bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no `postgres` user to own the cluster"
    return None


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *cmd]


@contextmanager
def postgres_server(dbname: str = "gradebook") -> Iterator[str]:
    """Yield `postgresql://postgres@/DBNAME?host=SOCKETDIR` for a fresh server."""
    why = unavailable_reason()
    if why:
        raise RuntimeError(why)
    bindir = pg_bindir()
    tmp = Path(tempfile.mkdtemp(prefix="pgtest-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for path in (tmp, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    run = lambda *cmd: subprocess.run(_as_owner([str(bindir / cmd[0]), *cmd[1:]]),  # noqa: E731
                                      check=True, capture_output=True, text=True, timeout=120)
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        # no TCP at all; the socket lives in our folder
        run("pg_ctl", "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-t", "60",
            "-o", f"-c listen_addresses='' -c unix_socket_directories='{sock}' -c fsync=off",
            "start")
        run("createdb", "-h", str(sock), "-U", "postgres", dbname)
        yield f"postgresql://postgres@/{dbname}?host={sock}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                      "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
