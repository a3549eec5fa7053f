# SPDX-License-Identifier: Apache-2.0
"""pgguest — a real Postgres 15 (Debian's packages) inside the test guest.

The host prepares everything, where it is fast:

- `build_disk(cache)`: a throw-away cluster made with tests/lib/pg-cluster.sh
  (initdb, then the tables loaded, VACUUM FREEZE'd and checkpointed, so a
  scan in the guest writes nothing), its data directory together with the
  server and psql binaries, their `ldd` closure (in /lib of the image) and
  Postgres's share directory, turned into an ext4 image with
  `mkfs.ext4 -d` (ownership kept: the data directory belongs to the
  postgres user).  The image is cached by its recipe and Postgres's
  version; QEMU opens it with snapshot=on, so every run starts from it.
- In the guest (`PgGuest`): the image is mounted at /pg, the server runs
  as postgres (vmtool as) inside the managed cgroup with its data
  directory on the virtio disk, so reading a table fills the cgroup with
  real page cache; psql runs outside the cgroup (only the backends count).

Python 3 standard library only; every wait is bounded.
"""
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time

from vmlib import MIB, GuestError, log, run

HERE = os.path.dirname(os.path.abspath(__file__))
PG_CLUSTER = os.path.join(HERE, "..", "lib", "pg-cluster.sh")
PG_MAJOR = "15"
BINDIR = f"/usr/lib/postgresql/{PG_MAJOR}/bin"
SHAREDIR = f"/usr/share/postgresql/{PG_MAJOR}"
PKGLIBDIR = f"/usr/lib/postgresql/{PG_MAJOR}/lib"
MOUNT = "/pg"                      # where the image is mounted in the guest
SOCKDIR = "/run/postgresql"

# The tables: (name, MiB).  Rows of 1 800 bytes, four to a page, so a scan
# costs little CPU per byte (TCG is slow) and TOAST never applies.
ROW_PAD = 1800
ROWS_PER_MIB = 128 * 4
TABLES = (("scan", 128),   # scenario (a): twice memory.high (64 MiB)
          ("sortme", 56),  # scenario (b): sorted with a large work_mem
          ("hot", 52))     # scenario (d): read again and again
# Bumped whenever the recipe below changes what the image holds.
RECIPE = "4"

# Server settings in the guest (the command line overrides the host's
# postgresql.conf): tiny shared memory, no background writes that would
# blur the page cache figures, no parallel workers (one vCPU), no JIT
# (its library is not copied).
SERVER_SETTINGS = {
    "listen_addresses": "", "unix_socket_directories": SOCKDIR, "port": "5432",
    "shared_buffers": "8MB", "max_connections": "10", "autovacuum": "off",
    "max_parallel_workers_per_gather": "0", "jit": "off", "fsync": "off",
    "synchronous_commit": "off", "full_page_writes": "off", "checkpoint_timeout": "1h",
    "max_wal_size": "1GB", "dynamic_shared_memory_type": "mmap", "huge_pages": "off",
    "logging_collector": "off", "log_min_messages": "warning",
}


def _pg_version():
    return run([f"{BINDIR}/postgres", "--version"]).stdout.strip()


def disk_key():
    h = hashlib.sha256()
    h.update(repr((RECIPE, ROW_PAD, TABLES, _pg_version())).encode())
    return h.hexdigest()[:16]


def build_disk(cache_dir):
    """Path of the cached ext4 image, built first if needed (~15 s)."""
    if not os.path.exists(f"{BINDIR}/postgres"):
        raise GuestError(f"{BINDIR}/postgres missing (install postgresql-{PG_MAJOR})")
    os.makedirs(cache_dir, exist_ok=True)
    img = os.path.join(cache_dir, f"pgdisk-{disk_key()}.img")
    if os.path.exists(img):
        return img
    t = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="vmi-pgimg-", dir="/tmp")
    os.chmod(tmp, 0o755)  # postgres must reach the cluster below it
    cluster = os.path.join(tmp, "pg")
    try:
        _make_cluster(cluster)
        root = os.path.join(tmp, "root")
        _assemble(root, os.path.join(cluster, "data"))
        _mkfs(root, img + ".new")
        os.rename(img + ".new", img)
    finally:
        subprocess.run([PG_CLUSTER, "stop", cluster], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(img + ".new"):
            os.unlink(img + ".new")
    for old in os.listdir(cache_dir):  # images of older recipes
        if old.startswith("pgdisk-") and old != os.path.basename(img):
            os.unlink(os.path.join(cache_dir, old))
    log(f"Postgres disk image built in {time.monotonic() - t:.1f}s: "
        f"{os.path.getsize(img) / MIB:.0f} MiB")
    return img


def _make_cluster(cluster):
    # TZ=GMT: initdb writes it as the time zone, which Postgres knows
    # without the host's zoneinfo files.
    env = dict(os.environ, TZ="GMT")
    # wal_level = minimal: a table filled in the transaction that created
    # it writes no WAL, and few segments are kept: a small image.
    connstr = run([PG_CLUSTER, "start", cluster, "wal_level = minimal", "max_wal_senders = 0",
                   "min_wal_size = 32MB", "max_wal_size = 64MB"],
                  timeout=120, env=env).stdout.strip()
    argv = [f"{BINDIR}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", connstr]
    for name, size in TABLES:
        rows = size * ROWS_PER_MIB
        argv += ["-c", f"CREATE TABLE {name} (id int, pad text) WITH (autovacuum_enabled = off);"
                       f"INSERT INTO {name} SELECT g, repeat(md5(g::text), {ROW_PAD // 32})"
                       f" || repeat('x', {ROW_PAD % 32}) FROM generate_series(1, {rows}) g"]
    # Each -c is its own transaction: VACUUM must not run inside one.
    argv += ["-c", "VACUUM (FREEZE, ANALYZE)", "-c", "CHECKPOINT", "-c", "CHECKPOINT"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise GuestError(f"loading the tables failed: {r.stderr.strip()[-500:]}")
    run([PG_CLUSTER, "pause", cluster], timeout=60)


def _assemble(root, datadir):
    """The image's tree: data/, the binaries at their packaged paths (so
    Postgres finds its share directory relative to itself), lib/."""
    os.makedirs(root)
    shutil.move(datadir, os.path.join(root, "data"))
    for stale in ("postmaster.pid", "postmaster.opts"):
        if os.path.exists(os.path.join(root, "data", stale)):
            os.unlink(os.path.join(root, "data", stale))
    bindir = os.path.join(root, BINDIR.lstrip("/"))
    os.makedirs(bindir)
    libdir = os.path.join(root, "lib")
    os.makedirs(libdir)
    from vmlib import ldd_closure
    libs = set()
    for prog in ("postgres", "psql"):
        shutil.copy2(f"{BINDIR}/{prog}", bindir)
        libs.update(ldd_closure(f"{BINDIR}/{prog}"))
    for lib in libs:
        if "ld-linux" not in lib:  # the initramfs has the loader
            shutil.copy(os.path.realpath(lib), os.path.join(libdir, os.path.basename(lib)))
    shutil.copytree(SHAREDIR, os.path.join(root, SHAREDIR.lstrip("/")), symlinks=True)
    # The server checks that its library directory exists; PL/pgSQL is
    # the one module the tests load (its own libraries are in the closure).
    pkglib = os.path.join(root, PKGLIBDIR.lstrip("/"))
    os.makedirs(pkglib)
    shutil.copy2(f"{PKGLIBDIR}/plpgsql.so", pkglib)


def _mkfs(root, img):
    used = int(run(["du", "-sbx", root]).stdout.split()[0])
    size = used + used // 4 + 96 * MIB  # room for WAL and temporary files
    with open(img, "wb") as f:
        f.truncate(size)
    run(["mkfs.ext4", "-q", "-F", "-L", "pgdisk", "-m", "0", "-d", root, img], timeout=300)


def pg_ids():
    """The postgres user's (uid, gid) on the host: the image's files carry them."""
    import pwd
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


class PgGuest:
    """The server in the guest, in the managed cgroup."""

    def __init__(self, vm, cgroup):
        self.vm, self.cg = vm, cgroup
        self.uid, self.gid = pg_ids()
        self.lib = f"LD_LIBRARY_PATH={MOUNT}/lib"
        self.bin = f"{MOUNT}{BINDIR}"

    def mount(self):
        self.vm.sh(f"mkdir -p {MOUNT} /dev/shm {SOCKDIR} && "
                   f"mount -t ext4 -o noatime /dev/vda {MOUNT} && "
                   f"mount -t tmpfs -o mode=1777 tmpfs /dev/shm && "
                   f"chown {self.uid}:{self.gid} {SOCKDIR}")

    def start(self, timeout=60):
        argv = ["env", self.lib, "vmtool", "as", str(self.uid), str(self.gid),
                f"{self.bin}/postgres", "-D", f"{MOUNT}/data"]
        for k, v in SERVER_SETTINGS.items():
            argv += ["-c", f"{k}={v}"]
        inner = f"echo $$ > {self.cg}/cgroup.procs && exec " + " ".join(map(shlex.quote, argv))
        self.vm.sh(f"(sh -c {shlex.quote(inner)} </dev/null >>/run/pg.log 2>&1 &)")
        self.wait_ready(timeout)

    def wait_ready(self, timeout=60):
        """Until the server answers (also after it restarted its backends
        because one was killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc, _ = self.vm.run(self.psql_cmd("SELECT 1"), timeout=10)
            if rc == 0:
                return
            if self.vm.run(f"test -s {MOUNT}/data/postmaster.pid")[0] != 0 and \
                    "FATAL" in self.vm.run("cat /run/pg.log")[1]:
                break
            time.sleep(0.2)
        raise GuestError("Postgres does not answer in the guest: "
                         + self.vm.run("tail -n 20 /run/pg.log")[1])

    def psql_cmd(self, sql):
        """A guest shell command running sql with psql (unaligned, tuples
        only), outside the cgroup."""
        return (f"env {self.lib} {self.bin}/psql -X -q -A -t -v ON_ERROR_STOP=1 "
                f"-h {SOCKDIR} -U postgres -d postgres -c {shlex.quote(sql)}")

    def query(self, sql, timeout=60):
        return self.vm.sh(self.psql_cmd(sql), timeout=timeout).strip()

    def background(self, name, sql):
        """Starts sql in the background; `finished(name)` tells when it has
        ended, with its start and end (guest monotonic ms) and status."""
        self.vm.sh(f"rm -f /run/{name}.time; (vmtool timed /run/{name}.time /bin/sh -c "
                   f"{shlex.quote('exec ' + self.psql_cmd(sql))} </dev/null "
                   f">/run/{name}.out 2>&1 &)")

    def finished(self, name):
        """(start ms, end ms, exit status) once the background query ended,
        else None."""
        rc, out = self.vm.run(f"cat /run/{name}.time 2>/dev/null")
        parts = out.split()
        if rc != 0 or len(parts) != 3:
            return None
        return float(parts[0]), float(parts[1]), int(parts[2])

    def wait(self, name, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.finished(name)
            if done:
                return done
            time.sleep(0.2)
        return None

    def cancel_all(self):
        """Cancels every other client's running query."""
        self.query("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
                   "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")

    def stop(self):
        self.vm.run(f"kill -INT $(head -n 1 {MOUNT}/data/postmaster.pid) 2>/dev/null")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                self.vm.run(f"test -e {MOUNT}/data/postmaster.pid")[0] == 0:
            time.sleep(0.1)
