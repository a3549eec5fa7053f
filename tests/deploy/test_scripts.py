#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""deploy-scripts / deploy-cgroup2: the NeonVM helper scripts.

  test_scripts.py fake   shell syntax (and shellcheck when installed);
                         cgroup-setup.sh on a directory tree that imitates
                         cgroupfs: controller enabling down a nested path,
                         ownership of exactly the three files the daemon
                         writes, idempotence, every refusal; run-in-cgroup.sh
                         writes its own pid and then execs in place.
  test_scripts.py real   run-in-cgroup.sh moves a process into a real
                         cgroup v2 directory (/proc/self/cgroup shows it);
                         skipped without root or a writable cgroup2 mount.
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from checks import check, exit_status, skip

SOURCE = os.environ.get("VMI_SOURCE_DIR", ".")
SCRIPTS = os.path.join(SOURCE, "deploy", "neonvm")
SETUP = os.path.join(SCRIPTS, "cgroup-setup.sh")
RUN_IN = os.path.join(SCRIPTS, "run-in-cgroup.sh")


def sh(script, *args, root=None):
    env = dict(os.environ)
    if root is not None:
        env["VMI_CGROUP_ROOT"] = root
    return subprocess.run(["sh", script, *args], env=env, capture_output=True, text=True,
                          timeout=20, check=False)


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def fake_cgroup(root, controllers="cpu io memory"):
    """A cgroupfs imitation: the root's controller files."""
    write(os.path.join(root, "cgroup.controllers"), controllers + "\n")
    write(os.path.join(root, "cgroup.subtree_control"))


def fake_leaf(path):
    """A cgroup directory as the kernel fills it once memory is enabled."""
    for f in ["cgroup.procs", "cgroup.subtree_control", "memory.high", "memory.max",
              "memory.current", "cgroup.freeze"]:
        write(os.path.join(path, f))


def other_user():
    """A user to hand the cgroup to: nobody as root, else ourselves."""
    if os.geteuid() == 0:
        return pwd.getpwnam("nobody")
    return pwd.getpwuid(os.geteuid())


def test_lint():
    for script in [SETUP, RUN_IN]:
        r = subprocess.run(["sh", "-n", script], capture_output=True, text=True, check=False)
        check(r.returncode == 0, "sh -n " + os.path.basename(script) + " " + r.stderr)
        if shutil.which("shellcheck"):
            r = subprocess.run(["shellcheck", "-s", "sh", script], capture_output=True,
                               text=True, check=False)
            check(r.returncode == 0, "shellcheck " + os.path.basename(script) + " " + r.stdout)
        else:
            print("# shellcheck not installed: not run")


def test_setup_nested(tmp):
    root = os.path.join(tmp, "nested")
    fake_cgroup(root)
    write(os.path.join(root, "pg", "cgroup.subtree_control"))
    fake_leaf(os.path.join(root, "pg", "main"))
    user = other_user()
    r = sh(SETUP, "pg/main", user.pw_name, root=root)
    check(r.returncode == 0, "cgroup-setup on a nested name succeeds " + r.stderr)
    check(read(os.path.join(root, "cgroup.subtree_control")).strip() == "+memory"
          and read(os.path.join(root, "pg", "cgroup.subtree_control")).strip() == "+memory",
          "memory is enabled at every level above the cgroup")
    leaf = os.path.join(root, "pg", "main")
    for f in ["memory.high", "memory.max", "cgroup.freeze"]:
        check(os.stat(os.path.join(leaf, f)).st_uid == user.pw_uid, f + " handed to the owner")
    if os.geteuid() == 0:
        for f in ["cgroup.procs", "cgroup.subtree_control", "memory.current", ""]:
            check(os.stat(os.path.join(leaf, f)).st_uid == 0,
                  (f or "the directory") + " stays root's")

    # The kernel shows enabled controllers without "+": nothing to rewrite.
    write(os.path.join(root, "cgroup.subtree_control"), "memory\n")
    r = sh(SETUP, "pg/main", user.pw_name, root=root)
    check(r.returncode == 0 and read(os.path.join(root, "cgroup.subtree_control")) == "memory\n",
          "a second run succeeds and leaves enabled controllers alone")


def test_setup_creates(tmp):
    root = os.path.join(tmp, "creates")
    fake_cgroup(root)
    r = sh(SETUP, "neon-postgres", other_user().pw_name, root=root)
    # A plain directory gets no memory.high from mkdir: the script must say so.
    check(os.path.isdir(os.path.join(root, "neon-postgres")), "cgroup-setup creates the cgroup")
    check(r.returncode == 1 and "memory.high is missing" in r.stderr,
          "a cgroup without memory files is refused: " + r.stderr.strip())


def test_setup_refusals(tmp):
    user = other_user().pw_name
    root = os.path.join(tmp, "refuse")
    fake_cgroup(root, "cpu io pids")
    r = sh(SETUP, "x", user, root=root)
    check(r.returncode == 1 and "memory controller is not available" in r.stderr,
          "no memory controller is refused: " + r.stderr.strip())
    check(not os.path.exists(os.path.join(root, "x")), "... before anything is created")

    fake_cgroup(root)
    for bad in ["/abs", "../up", "a/../b", "a//b", "trailing/"]:
        r = sh(SETUP, bad, user, root=root)
        check(r.returncode == 1 and "bad cgroup name" in r.stderr, "name %r is refused" % bad)
    r = sh(SETUP, "x", "no-such-user-vmi", root=root)
    check(r.returncode == 1 and "no user" in r.stderr, "an unknown owner is refused")

    # Not cgroup2 and not empty (a v1 or hybrid tree): never mount over it.
    v1 = os.path.join(tmp, "v1")
    os.makedirs(os.path.join(v1, "memory"))
    r = sh(SETUP, "x", user, root=v1)
    check(r.returncode == 1 and "not a cgroup2 mount and not empty" in r.stderr,
          "a populated non-cgroup2 root is refused without mounting: " + r.stderr.strip())


def test_run_in(tmp):
    root = os.path.join(tmp, "run")
    fake_leaf(os.path.join(root, "g"))
    r = sh(RUN_IN, "g", "sh", "-c", "echo $$", root=root)
    procs = read(os.path.join(root, "g", "cgroup.procs")).strip()
    check(r.returncode == 0 and procs and r.stdout.strip() == procs,
          "run-in-cgroup writes its pid, and the command runs as that same process")

    marker = os.path.join(tmp, "ran")
    r = sh(RUN_IN, "missing", "touch", marker, root=root)
    check(r.returncode == 1 and "cannot join" in r.stderr and not os.path.exists(marker),
          "a missing cgroup fails before the command runs")
    r = sh(RUN_IN, "g", root=root)
    check(r.returncode == 2 and "usage" in r.stderr, "no command: usage, exit 2")


def cgroup2_root():
    """A writable cgroup2 mount, or None."""
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]:
        if os.path.exists(os.path.join(root, "cgroup.controllers")) and \
                os.access(root, os.W_OK):
            return root
    return None


def test_real():
    root = cgroup2_root()
    if os.geteuid() != 0 or not root:
        skip("needs root and a writable cgroup v2 mount")
        return exit_status()
    name = "vmi-deploy-test-%d" % os.getpid()
    path = os.path.join(root, name)
    os.mkdir(path)
    try:
        r = sh(RUN_IN, name, "cat", "/proc/self/cgroup", root=root)
        unified = [ln for ln in r.stdout.splitlines() if ln.startswith("0::")]
        check(r.returncode == 0 and len(unified) == 1 and unified[0].endswith("/" + name),
              "the command runs inside %s (%s)" % (path, unified))
    finally:
        for _ in range(50):  # the process has exited; its cgroup may lag briefly
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.02)
    check(not os.path.exists(path), "test cgroup removed")
    return exit_status()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "fake"
    if mode == "real":
        return test_real()
    test_lint()
    with tempfile.TemporaryDirectory(prefix="vmi-cgfake-") as tmp:
        os.chmod(tmp, 0o755)
        test_setup_nested(tmp)
        test_setup_creates(tmp)
        test_setup_refusals(tmp)
        test_run_in(tmp)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
