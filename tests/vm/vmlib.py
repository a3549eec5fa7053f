# SPDX-License-Identifier: Apache-2.0
"""vmlib — boot a real Linux guest under QEMU for the end-to-end test and
the demo: fetch and cache the Debian kernel, build the initramfs, start
QEMU (KVM where it really works, TCG otherwise), talk QMP, run commands in
the guest, resize its memory (virtio-mem, DIMM) and stop it on every path.

Python 3 standard library only.  Everything has a timeout.
"""
import ctypes
import gzip
import hashlib
import json
import lzma
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

MIB = 1024 * 1024
GUEST_CMD_PORT = 10399          # vmtool serve inside the guest
GUEST_INFORMANT_PORT = 10301    # the daemon inside the guest
HOST_FROM_GUEST = "10.0.2.2"    # slirp's address of the host's 127.0.0.1
# The start of every daemon config in the guest.  slirp under TCG: round
# trips of tens of ms, so the agent budgets are generous.
DAEMON_CONFIG_HEAD = f"""\
[server]
listen = 0.0.0.0:{GUEST_INFORMANT_PORT}
[agent]
register_id_timeout = 2s
resume_timeout = 2s
upscale_timeout = 2s
id_check_timeout = 2s
"""
# The Postgres disk needs virtio_blk and ext4.  crc32c-intel needs SSE4.2,
# which TCG's CPU model lacks: crc32c_generic serves ext4 instead.
MODULES = ("virtio_pci", "virtio_net", "virtio_mem", "virtio_blk", "ext4")
MODULES_LEFT_OUT = ("crc32c-intel.ko",)
HERE = os.path.dirname(os.path.abspath(__file__))

_t0 = time.monotonic()


class Skip(Exception):
    """The machine cannot run a VM at all (no QEMU, no kernel)."""


class GuestError(Exception):
    pass


def log(msg):
    print(f"[vm {time.monotonic() - _t0:6.1f}s] {msg}", flush=True)


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, check=True, timeout=timeout, capture_output=True,
                          text=True, **kw)


# ---- the kernel -------------------------------------------------------------

def kernel_package():
    """linux-image-<ver>-amd64 that Debian's linux-image-amd64 points to."""
    try:
        out = run(["apt-cache", "depends", "linux-image-amd64"], timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "Depends:" and parts[1].startswith("linux-image-"):
            return parts[1]
    return None


def extract_vmlinux(bzimage):
    """The uncompressed ELF kernel inside a bzImage (QEMU boots it through
    its PVH entry, twice as fast as the bzImage under TCG), or None."""
    data = open(bzimage, "rb").read()
    for magic, opener in ((b"\xfd7zXZ\x00", "xz"), (b"\x1f\x8b\x08\x00", "gz")):
        off = data.find(magic)
        while off >= 0:
            try:
                if opener == "xz":
                    out = lzma.LZMADecompressor().decompress(data[off:])
                else:
                    out = gzip.GzipFile(fileobj=_Bytes(data[off:])).read()
                if out[:4] == b"\x7fELF":
                    return out
            except (lzma.LZMAError, OSError, EOFError):
                pass
            off = data.find(magic, off + 1)
    return None


class _Bytes:
    """A minimal file object over bytes that tolerates trailing garbage."""

    def __init__(self, b):
        self.b, self.pos = b, 0

    def read(self, n=-1):
        end = len(self.b) if n < 0 else self.pos + n
        chunk = self.b[self.pos:end]
        self.pos += len(chunk)
        return chunk


class Kernel:
    def __init__(self, version, image, modules):
        self.version, self.image, self.modules = version, image, modules


def prepare_kernel(cache_dir):
    """Download (once) and cache the distribution kernel and the modules
    the guest needs.  Raises Skip when there is no kernel to be had."""
    os.makedirs(cache_dir, exist_ok=True)
    pkg = kernel_package()
    if pkg is None:  # offline: any kernel cached before will do
        cached = sorted(d for d in os.listdir(cache_dir) if d.startswith("linux-image-"))
        if not cached:
            raise Skip("cannot find a Debian kernel package (apt-cache depends "
                       "linux-image-amd64 failed) and none is cached")
        pkg = cached[-1]
    kdir = os.path.join(cache_dir, pkg)
    if not _cached_for(kdir, MODULES):
        try:
            _fetch_kernel(pkg, kdir)
        except Skip:
            # Stale package lists name a version the mirror no longer has:
            # refresh them once and ask again.
            try:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            except (OSError, subprocess.SubprocessError):
                pass
            pkg = kernel_package() or pkg
            kdir = os.path.join(cache_dir, pkg)
            _fetch_kernel(pkg, kdir)
    version = open(os.path.join(kdir, "version")).read().strip()
    order = open(os.path.join(kdir, "modules.order")).read().split()
    image = os.path.join(kdir, "vmlinux")
    if not os.path.exists(image):
        image = os.path.join(kdir, "vmlinuz")
    return Kernel(version, image, [os.path.join(kdir, "modules", m) for m in order])


def _cached_for(kdir, modules):
    """The kernel in kdir is complete and holds the modules asked for now."""
    try:
        return open(os.path.join(kdir, "modules.wanted")).read().split() == list(modules) \
            and os.path.exists(os.path.join(kdir, "ready"))
    except OSError:
        return False


def _fetch_kernel(pkg, kdir):
    t = time.monotonic()
    shutil.rmtree(kdir, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix="kernel-", dir=os.path.dirname(kdir))
    try:
        try:
            run(["apt-get", "download", pkg], cwd=tmp, timeout=300)
        except (OSError, subprocess.SubprocessError) as e:
            msg = getattr(e, "stderr", "") or str(e)
            raise Skip(f"apt-get download {pkg} failed: {msg.strip()[-300:]}")
        deb = [f for f in os.listdir(tmp) if f.endswith(".deb")][0]
        root = os.path.join(tmp, "root")
        run(["dpkg-deb", "-x", os.path.join(tmp, deb), root])
        version = os.listdir(os.path.join(root, "lib", "modules"))[0]
        run(["depmod", "-b", root, version])
        os.makedirs(os.path.join(kdir + ".new", "modules"))
        order = []
        for mod in MODULES:
            out = run(["modprobe", "-d", root, "-S", version, "--show-depends", mod]).stdout
            for line in out.splitlines():
                parts = line.split()
                name = os.path.basename(parts[1]) if parts[:1] == ["insmod"] else None
                if name and name not in order and name not in MODULES_LEFT_OUT:
                    order.append(name)
                    shutil.copy(parts[1], os.path.join(kdir + ".new", "modules"))
        bz = os.path.join(root, "boot", f"vmlinuz-{version}")
        shutil.copy(bz, os.path.join(kdir + ".new", "vmlinuz"))
        elf = extract_vmlinux(bz)
        if elf is not None:
            with open(os.path.join(kdir + ".new", "vmlinux"), "wb") as f:
                f.write(elf)
        for name, text in (("version", version), ("modules.order", "\n".join(order)),
                           ("modules.wanted", "\n".join(MODULES)), ("ready", "")):
            with open(os.path.join(kdir + ".new", name), "w") as f:
                f.write(text + "\n")
        os.rename(kdir + ".new", kdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(kdir + ".new", ignore_errors=True)
    log(f"kernel {pkg} fetched and cached in {time.monotonic() - t:.1f}s")


# ---- the initramfs ----------------------------------------------------------

class Cpio:
    """An in-memory cpio archive in the kernel's "newc" format."""

    def __init__(self):
        self.parts, self.ino, self.dirs = [], 1, {""}

    def _add(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.lstrip("/").encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name_b), 0)
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08x" % v for v in fields)
        self.parts += [hdr, name_b, b"\0" * (-(len(hdr) + len(name_b)) % 4),
                       data, b"\0" * (-len(data) % 4)]

    def dir(self, path):
        path = path.strip("/")
        if path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self._add(path, 0o040755)

    def file(self, path, data, mode=0o755):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o100000 | mode, data)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o120777, target.encode())

    def chardev(self, path, major, minor):
        self.dir(os.path.dirname(path.strip("/")))
        self._add(path, 0o020600, rdev=(major, minor))

    def bytes(self):
        self._add("TRAILER!!!", 0)
        return b"".join(self.parts)


def ldd_closure(binary):
    """Paths of the shared objects `binary` loads (ldd), loader included."""
    out = run(["ldd", binary], timeout=30).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1:
            path = parts[parts.index("=>") + 1]
        elif parts and parts[0].startswith("/"):
            path = parts[0]
        else:
            continue
        if path.startswith("/") and path not in libs:
            libs.append(path)
    return libs


# Loaded by the daemon with dlopen(3) when first needed (libcurl for the
# HTTP agent's calls, libpq for the file cache): ldd does not list them.
DAEMON_DLOPENED = ("libcurl.so.4", "libpq.so.5")


def find_library(soname):
    """The path ldconfig's cache gives for a 64-bit soname, or None."""
    for line in run(["ldconfig", "-p"], timeout=30).stdout.splitlines():
        name, _, path = line.strip().partition(" => ")
        if name.split()[:1] == [soname] and "x86-64" in name:
            return path.strip()
    return None


def daemon_libraries(daemon):
    """Every shared object the daemon may load: its ldd closure, the
    libraries it dlopens with theirs, and libgcc_s (pthread_cancel)."""
    libs = ldd_closure(daemon)
    for soname in DAEMON_DLOPENED:
        path = find_library(soname)
        if path is None:
            raise GuestError(f"{soname} not found (ldconfig -p): the daemon loads it")
        libs += [lib for lib in [path] + ldd_closure(path) if lib not in libs]
    gcc_s = "/lib/x86_64-linux-gnu/libgcc_s.so.1"
    if os.path.exists(gcc_s) and gcc_s not in libs:
        libs.append(gcc_s)
    return libs


def build_initramfs(out_path, kernel, vmtool, daemon=None, daemon_config=None, extra=None,
                    users=()):
    """Writes a gzip'ed initramfs: busybox, vmtool, /init, the kernel's
    virtio modules, and (if given) the daemon with its libraries and its
    config at /etc/vm-informant/vm-informant.conf.  extra maps guest paths
    to bytes; users are (name, uid, gid) added to /etc/passwd and
    /etc/group."""
    c = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "etc", "usr/bin", "sbin"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    bb = shutil.which("busybox") or "/bin/busybox"
    c.file("bin/busybox", open(bb, "rb").read())
    for applet in run([bb, "--list"]).stdout.split():
        if applet != "busybox":
            c.symlink(f"bin/{applet}", "busybox")
    c.file("bin/vmtool", open(vmtool, "rb").read())
    c.file("init", open(os.path.join(HERE, "init.sh"), "rb").read())
    c.file("bin/vmi-start", open(os.path.join(HERE, "vmi-start.sh"), "rb").read())
    for mod in kernel.modules:
        c.file(f"lib/modules/{os.path.basename(mod)}", open(mod, "rb").read(), 0o644)
    c.file("etc/vmi/modules", "".join(os.path.basename(m) + "\n"
                                      for m in kernel.modules).encode(), 0o644)
    c.file("etc/passwd", "".join(f"{n}:x:{u}:{g}:{n}:/:/bin/sh\n" for n, u, g in
                                 (("root", 0, 0), *users)).encode(), 0o644)
    c.file("etc/group", "".join(f"{n}:x:{g}:\n" for n, _, g in
                                (("root", 0, 0), *users)).encode(), 0o644)
    c.file("etc/hosts", b"127.0.0.1 localhost\n", 0o644)
    if daemon:
        c.file("usr/bin/vm-informant", open(daemon, "rb").read())
        for lib in daemon_libraries(daemon):
            c.file(lib, open(os.path.realpath(lib), "rb").read())
    if daemon_config is not None:
        c.file("etc/vm-informant/vm-informant.conf", daemon_config.encode(), 0o644)
    for path, data in (extra or {}).items():
        c.file(path, data)
    with open(out_path, "wb") as f:
        f.write(gzip.compress(c.bytes(), compresslevel=1))
    return out_path


# ---- QMP --------------------------------------------------------------------

class QMP:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf, self.events = b"", []
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise GuestError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise GuestError(f"QMP {cmd}: {reply['error'].get('desc')}")
            elif "return" in reply:
                return reply["return"]

    def close(self):
        self.sock.close()


# ---- the VM -----------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerator():
    """KVM only where a guest really boots with it: kvm_intel or kvm_amd
    loaded (a /dev/kvm from e.g. kvm_pvm cannot run Debian's kernel)."""
    if (os.path.exists("/sys/module/kvm_intel") or os.path.exists("/sys/module/kvm_amd")) \
            and os.access("/dev/kvm", os.R_OK | os.W_OK):
        return ["-accel", "kvm", "-cpu", "host"], "kvm"
    return ["-accel", "tcg"], "tcg"


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class VM:
    """A guest with `mem` of base memory, a virtio-mem device "vm0" of up to
    `vmem` bytes (initially unplugged) and DIMM slots for hot-plug."""

    def __init__(self, kernel, initrd, workdir, mem_mib=512, vmem_mib=3072, slots=4,
                 maxmem_mib=6144, block_mib=8, append="", disks=()):
        self.kernel, self.initrd, self.workdir = kernel, initrd, workdir
        self.disks = disks  # raw images, /dev/vda… in the guest; writes are not kept
        self.mem_mib, self.vmem_mib, self.block_mib = mem_mib, vmem_mib, block_mib
        self.slots, self.maxmem_mib, self.append = slots, maxmem_mib, append
        self.proc = self.qmp = None
        self.serial = os.path.join(workdir, "serial.log")
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        self.accel = None
        self.boot_seconds = None

    def _argv(self):
        accel, self.accel = accelerator()
        fwd = (f"hostfwd=tcp:127.0.0.1:{self.cmd_port}-:{GUEST_CMD_PORT},"
               f"hostfwd=tcp:127.0.0.1:{self.informant_port}-:{GUEST_INFORMANT_PORT}")
        return ["qemu-system-x86_64", *accel, "-machine", "q35", "-smp", "1",
                "-m", f"{self.mem_mib}M,slots={self.slots},maxmem={self.maxmem_mib}M",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", self.kernel, "-initrd", self.initrd,
                # Hot-plugged memory must be onlined (Debian leaves it
                # offline), as movable so that virtio-mem can unplug it all.
                "-append", "console=ttyS0 panic=-1 memhp_default_state=online_movable "
                           + self.append,
                "-serial", f"file:{self.serial}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-netdev", f"user,id=n0,{fwd}",
                "-device", "virtio-net-pci,netdev=n0,romfile=",
                "-object", f"memory-backend-ram,id=vmem0,size={self.vmem_mib}M",
                "-device", f"virtio-mem-pci,id=vm0,memdev=vmem0,block-size={self.block_mib}M,"
                           "requested-size=0",
                *self._disk_args()]

    def _disk_args(self):
        # snapshot=on: the guest's writes go to a temporary overlay, so a
        # cached image serves every run unchanged.
        args = []
        for i, path in enumerate(self.disks):
            args += ["-drive", f"file={path},format=raw,if=none,id=disk{i},snapshot=on,"
                               "cache=unsafe",
                     "-device", f"virtio-blk-pci,drive=disk{i}"]
        return args

    def start(self, timeout=90):
        """Boots and waits until the guest's command channel answers."""
        for attempt in range(3):
            self.cmd_port, self.informant_port = free_port(), free_port()
            t = time.monotonic()
            for p in (self.serial, self.qmp_path):
                if os.path.exists(p):
                    os.unlink(p)
            qlog = open(os.path.join(self.workdir, "qemu.log"), "w")
            self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL, stdout=qlog,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            qlog.close()
            try:
                self._connect_qmp(t + 10)
            except GuestError:
                text = open(os.path.join(self.workdir, "qemu.log")).read()
                self.stop()
                if "hostfwd" in text or "forwarding" in text:
                    continue  # a port was taken in the meantime: new ports
                raise GuestError(f"QEMU did not start: {text.strip()[-500:]}")
            self._wait_channel(t + timeout)
            self.boot_seconds = time.monotonic() - t
            return self
        raise GuestError("QEMU could not forward its ports three times in a row")

    def _connect_qmp(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GuestError(f"QEMU exited with status {self.proc.returncode}")
            if os.path.exists(self.qmp_path):
                try:
                    self.qmp = QMP(self.qmp_path)
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise GuestError("QMP socket did not appear")

    def _wait_channel(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GuestError(f"QEMU exited with status {self.proc.returncode} "
                                 f"during boot; serial log:\n{self.serial_tail()}")
            try:
                if self.run("true", timeout=2)[0] == 0:
                    return
            except (OSError, GuestError):
                pass
            time.sleep(0.1)
        raise GuestError(f"guest did not come up; serial log:\n{self.serial_tail()}")

    def serial_tail(self, lines=40):
        try:
            text = open(self.serial, errors="replace").read()
        except OSError:
            return "(no serial log)"
        return "\n".join(text.splitlines()[-lines:])

    def run(self, cmd, timeout=30):
        """(exit status, output) of `sh -c cmd` in the guest."""
        with socket.create_connection(("127.0.0.1", self.cmd_port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd.encode() + b"\n")
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                i = data.rfind(b"\0EXIT ")
                if i >= 0 and data.endswith(b"\n"):
                    return int(data[i + 6:].strip()), data[:i].decode(errors="replace")
        raise GuestError(f"guest command {cmd!r}: no complete answer")

    def sh(self, cmd, timeout=30):
        """Output of a guest command that must succeed."""
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise GuestError(f"guest command {cmd!r} exited {rc}: {out.strip()[-500:]}")
        return out

    def read_file(self, path):
        return self.sh(f"cat {path}")

    def read_int(self, path):
        return int(self.read_file(path).split()[0])

    def mem_total(self):
        for line in self.read_file("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
        raise GuestError("no MemTotal in the guest's /proc/meminfo")

    def wait_mem_total(self, pred, timeout=20):
        """Polls MemTotal until pred(value) holds; returns it (or the last)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.mem_total()
            if pred(value) or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def virtio_mem_resize(self, size):
        self.qmp.execute("qom-set", path="/machine/peripheral/vm0",
                         property="requested-size", value=size)

    def virtio_mem_size(self):
        return self.qmp.execute("qom-get", path="/machine/peripheral/vm0", property="size")

    def dimm_add(self, ident, size):
        self.qmp.execute("object-add", **{"qom-type": "memory-backend-ram",
                                          "id": f"{ident}-mem", "size": size})
        self.qmp.execute("device_add", driver="pc-dimm", id=ident, memdev=f"{ident}-mem")

    def stop(self):
        """Ends QEMU: quit over QMP, then SIGKILL after 3 s.  Idempotent."""
        if self.qmp is not None:
            try:
                self.qmp.execute("quit")
            except (OSError, GuestError, ValueError):
                pass
            self.qmp.close()
            self.qmp = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def build_vmtool(out_prefix):
    """Compiles the guest helper (tests/vm/vmtool.c) statically, cached under
    the hash of its source (checkouts of different versions share the cache;
    an mtime would not tell them apart)."""
    src = os.path.join(HERE, "vmtool.c")
    with open(src, "rb") as f:
        out_path = f"{out_prefix}-{hashlib.sha256(f.read()).hexdigest()[:16]}"
    if os.path.exists(out_path):
        return out_path
    run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-static",
         "-o", out_path + ".tmp", src])
    os.replace(out_path + ".tmp", out_path)
    return out_path
