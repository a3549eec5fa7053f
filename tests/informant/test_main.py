#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the vm-informant command line.

    test_main.py BINARY check   # any build: help, version, --check-config, exit 2
    test_main.py BINARY full    # + the fake-daemon build (vmi-main-test):
                                #   overrides, SIGHUP reload, supervisor via main

Exit 77 (skip) when BINARY does not exist yet.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

BIN, MODE = sys.argv[1], sys.argv[2]
SRC = os.environ.get("VMI_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SRC, "deploy", "vm-informant.conf.example")
TIMEOUT = 10
failures = []


def run(*args, env=None):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=TIMEOUT,
                       env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_help_version():
    for flag in ("--help", "-help", "-h", "--h"):
        rc, out, err = run(flag)
        check(rc == 0 and out.startswith("Usage: vm-informant") and err == "",
              f"{flag}: usage on stdout, exit 0 (rc={rc})")
    rc, out, _ = run("--version")
    check(rc == 0 and re.fullmatch(r"vm-informant \d+\.\d+\.\d+\S*\n", out) is not None,
          f"--version prints 'vm-informant X.Y.Z' (got {out!r})")


def test_usage_errors():
    for args, msg in ((["-nope"], "flag provided but not defined: -nope"),
                      (["-cgroup"], "flag needs an argument: -cgroup"),
                      (["-auto-restart=maybe"], "invalid boolean value")):
        rc, out, err = run(*args)
        check(rc == 2 and msg in err and "Usage:" in err and out == "",
              f"{args}: message + usage on stderr, exit 2 (rc={rc}, err={err!r})")


def test_check_config(tmp):
    rc, out, err = run("--check-config", "--config", EXAMPLE)
    check(rc == 0, f"example config is valid (rc={rc}, err={err!r})")
    # The example sets no key: same effective settings as no file.
    empty = os.path.join(tmp, "empty.conf")
    write(empty, "")
    rc2, out2, _ = run("--check-config", "--config", empty)
    check(rc2 == 0 and out == out2, "example config == built-in defaults")
    with open(EXAMPLE, encoding="utf-8") as f:
        example = f.read()
    set_keys = re.findall(r"^\s*(\w+)\s*=", example, re.M)
    check(not set_keys, f"the example sets no key, it only shows them (sets {set_keys})")
    # Uncommented, every shown value is the built-in default.
    uncommented = os.path.join(tmp, "uncommented.conf")
    write(uncommented, re.sub(r"^#(\w+ =)", r"\1", example, flags=re.M))
    rc4, out4, err4 = run("--check-config", "--config", uncommented)
    check(rc4 == 0 and out4 == out2,
          f"the example's commented values are the defaults (rc={rc4}, err={err4!r})")
    # The printed settings are a valid config file that prints the same.
    printed = os.path.join(tmp, "printed.conf")
    write(printed, out)
    rc3, out3, _ = run("--check-config", "--config", printed)
    check(rc3 == 0 and out3 == out, "check-config output parses back to the same settings")
    # Flags override the file, and the password is never printed.
    rc, out, _ = run("--check-config", "--config", EXAMPLE, "-cgroup", "other",
                     "-pgconnstr=dbname=postgres password=hunter2")
    check(rc == 0 and "name = other" in out and "hunter2" not in out
          and "password=***" in out and "enabled = true" in out.split("[filecache]")[1],
          f"overrides shown, password redacted:\n{out}")


def test_bad_config(tmp):
    bad = os.path.join(tmp, "bad.conf")
    write(bad, "# comment\n[cgroup]\nmax_upscale_wait = 5s\n")
    rc, out, err = run("--check-config", "--config", bad)
    check(rc == 2 and f"{bad}:3: [cgroup] max_upscale_wait" in err and err.count("\n") == 1,
          f"bad file: exit 2 with one line naming file:line and key (rc={rc}, err={err!r})")
    rc, _, err = run("--config", bad)
    check(rc == 2 and f"{bad}:3:" in err, "bad file without --check-config also exits 2")
    write(bad, "[cgroup]\nbogus = 1\n")
    rc, _, err = run("--check-config", "--config", bad)
    check(rc == 2 and f"{bad}:2: [cgroup] bogus: unknown key" in err, f"unknown key: {err!r}")
    rc, _, err = run("--check-config", "--config", os.path.join(tmp, "missing.conf"))
    check(rc == 2 and "cannot open config file" in err, f"missing file exits 2: {err!r}")


def test_check_config_validates_like_start(tmp):
    """What the daemon would refuse at start, --check-config refuses: exit 2
    with file, line and key, and no part of a password in any output."""
    conf = os.path.join(tmp, "v.conf")
    cases = [
        ("[filecache]\nconnstr = host=127.0.0.1 nosuchkey=1\n", 2, "[filecache] connstr",
         'invalid connection option "nosuchkey"', None),
        ("[server]\nauth_token_file = %s\n" % os.path.join(tmp, "no-token"), 2,
         "[server] auth_token_file", "No such file or directory", None),
        # The connection strings: a '/' or '@' in a URL's password
        # that libpq reads as part of another field.
        ("[filecache]\nconnstr = postgresql://app:Zm9v/YmFy+cw==@host/db\n", 2,
         "[filecache] connstr", "percent-encoded", "YmFy"),
        ("[filecache]\nconnstr = postgresql://app:Zm9v@PwX@127.0.0.1/db\n", 2,
         "[filecache] connstr", "percent-encoded", "PwX"),
    ]
    for text, want_rc, key, why, secret in cases:
        write(conf, "# test\n" + text)
        rc, out, err = run("--check-config", "--config", conf)
        check(rc == want_rc and f"{conf}:" in err and key in err and why in err,
              f"{text!r}: exit {want_rc} naming file:line and key (rc={rc}, err={err!r})")
        check(secret is None or (secret not in err and secret not in out),
              f"{text!r}: no part of the password shown ({err!r})")
    # A password in the query after an '@' elsewhere, and one holding '@'
    # percent-encoded: valid, printed masked.
    for connstr, secret in (("postgresql://u@h/db?application_name=x@y&password=sekret1",
                             "sekret1"),
                            ("postgresql://app:p%40ss%2Fw0rd@h/db", "ss%2Fw0rd")):
        write(conf, "[filecache]\nconnstr = %s\n" % connstr)
        rc, out, err = run("--check-config", "--config", conf)
        check(rc == 0 and "password=***" in out and secret not in out
              and "ss/w0rd" not in out, f"{connstr}: valid, masked ({rc}, {out!r}, {err!r})")


def read_until(proc, prefix, deadline):
    """Lines of proc.stdout until one starts with prefix (bounded)."""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if line.startswith(prefix):
            return line
    return None


def test_reload_reapplies_flags(tmp):
    conf = os.path.join(tmp, "reload.conf")
    write(conf, "[cgroup]\nname = file\n[log]\nformat = text\n")
    proc = subprocess.Popen([BIN, "--config", conf, "-cgroup=flag"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        line = read_until(proc, "run ", deadline)
        check(line is not None and "cgroup.name=flag" in line, f"flag wins at start: {line!r}")
        write(conf, "[cgroup]\nname = file2\nmax_upscale_wait = 40ms\n")
        proc.send_signal(signal.SIGHUP)
        line = read_until(proc, "reload", deadline)
        check(line is not None and "cgroup.name=flag" in line and "max_upscale_wait_ms=40" in line,
              f"reload re-reads the file and re-applies the flags: {line!r}")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=TIMEOUT) == 0, "exit status of the daemon is main's")
        err = proc.stderr.read()
        check(re.search(r"^\S+Z INFO vm-informant starting version=", err, re.M) is not None,
              f"text log format from the config: {err!r}")
    finally:
        proc.kill()
        proc.wait()


def test_supervisor_via_main(tmp):
    conf = os.path.join(tmp, "sup.conf")
    cg = os.path.join(tmp, "cg")
    os.mkdir(cg)
    write(os.path.join(cg, "cgroup.freeze"), "1")
    # auto_restart from the file must not make the child supervise again.
    write(conf, f"[supervisor]\nauto_restart = true\nmin_restart_interval = 0\n"
                f"[cgroup]\nroot = {tmp}\nname = cg\n")
    env = dict(os.environ, VMI_FAKE_DAEMON_EXIT="1")
    proc = subprocess.Popen([BIN, "--config", conf, "-auto-restart"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        runs = 0
        while runs < 3 and read_until(proc, "run ", deadline):
            runs += 1
        check(runs == 3, f"children restarted after exiting (saw {runs} runs)")
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=TIMEOUT) == 0, "supervisor exits 0 on SIGTERM")
        err = proc.stderr.read()
        check(err.count('"supervised":true') >= 3, "children run supervised, not supervisors")
        check(err.count('"msg":"supervisor: daemon exited"') >= 3, "exits are logged")
        with open(os.path.join(cg, "cgroup.freeze")) as f:
            check(f.read().strip() == "0", "cgroup thawed by the supervisor")
    finally:
        proc.kill()
        proc.wait()


def main():
    if not os.path.exists(BIN):
        print(f"SKIP: {BIN} is not built yet (vm-informant links once daemon.c and the "
              "cgroup library have landed)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        test_help_version()
        test_usage_errors()
        test_check_config(tmp)
        test_bad_config(tmp)
        test_check_config_validates_like_start(tmp)
        if MODE == "full":
            test_reload_reapplies_flags(tmp)
            test_supervisor_via_main(tmp)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
