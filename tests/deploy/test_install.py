#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""deploy-install: `meson install` into a temporary DESTDIR yields the
binary, the systemd unit, the man page and the example config, and they
agree with each other and with the daemon:

- the unit names the installed binary, keeps the hardening the issue asks
  for, passes `systemd-analyze verify` without a single warning and rates
  "OK" or better in `systemd-analyze security --offline`; its cgroup paths
  are the daemon's default cgroup;
- the man page renders with every groff warning on and has its sections;
- the example config and the NeonVM config pass --check-config, the example
  sets every key the daemon knows to its default, the man page lists every
  key with that same default, and --check-config rejects a bad key.

Exit 77 (skip) when the installed binary cannot check configs (a build
without the daemon); the reason is printed.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from checks import check, exit_status, skip

BUILD = os.environ.get("VMI_BUILD_DIR", "build")
SOURCE = os.environ.get("VMI_SOURCE_DIR", ".")
TIMEOUT = 60


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run(argv, check=False, **kw)


def install_paths(destdir):
    """Where the four files must be, from the build's own options."""
    r = run(["meson", "introspect", "--buildoptions", BUILD])
    if r.returncode != 0:
        sys.exit("meson introspect failed: " + r.stderr)
    opts = {o["name"]: o["value"] for o in json.loads(r.stdout)}
    prefix = opts["prefix"]

    def dest(*parts):
        # An absolute sysconfdir (/etc for the prefix /usr) ignores the prefix.
        return destdir + os.path.join(prefix, *parts)

    return {
        "binary": dest(opts["sbindir"], "vm-informant"),
        "unit": dest("lib", "systemd", "system", "vm-informant.service"),
        "man": dest(opts["mandir"], "man8", "vm-informant.8"),
        "man5": dest(opts["mandir"], "man5", "vm-informant.conf.5"),
        "mandir": dest(opts["mandir"]),
        "example": dest(opts["sysconfdir"], "vm-informant", "vm-informant.conf.example"),
        "doc_example": dest(opts["datadir"], "doc", "vm-informant", "examples",
                            "vm-informant.conf.example"),
        "sysusers": dest("lib", "sysusers.d", "vm-informant.conf"),
        "bin_path": os.path.join(prefix, opts["sbindir"], "vm-informant"),
    }


def unit_settings(text):
    """Unit file as {key: [values]} (sections merged; enough for checks)."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def check_unit(paths, cgroup_dir):
    with open(paths["unit"], encoding="utf-8") as f:
        text = f.read()
    s = unit_settings(text)
    exec_start = s.get("ExecStart", [""])[-1].split()
    check(exec_start[:1] == [paths["bin_path"]],
          "unit ExecStart runs the installed binary " + paths["bin_path"])
    for key, want in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("Restart", "on-failure"), ("User", "vm-informant"),
                      ("ProtectKernelTunables", "yes"), ("CapabilityBoundingSet", ""),
                      ("Type", "notify"), ("ConditionControlGroupController", "memory")]:
        check(s.get(key, [None])[-1] == want, "unit sets %s=%s" % (key, want))
    check(re.fullmatch(r"[1-9][0-9]*s", s.get("WatchdogSec", [""])[-1]) is not None,
          "unit sets WatchdogSec= (the daemon pings from its loop)")
    check(int(s.get("OOMScoreAdjust", ["0"])[-1]) <= -500,
          "unit sets OOMScoreAdjust= well below 0")
    check(bool(s.get("MemoryMin")), "unit protects the daemon's memory with MemoryMin=")
    reload_cmds = s.get("ExecReload", [])
    check(len(reload_cmds) == 2 and "--check-config" in reload_cmds[0]
          and "--config /etc/vm-informant/vm-informant.conf" in reload_cmds[0]
          and paths["bin_path"] in reload_cmds[0]
          and reload_cmds[1].endswith("kill -HUP $MAINPID"),
          "ExecReload= checks the config file, then sends SIGHUP (%s)" % reload_cmds)
    with open(paths["sysusers"], encoding="utf-8") as f:
        users = [l.split() for l in f if l.strip() and not l.startswith("#")]
    check(any(u[:2] == ["u", s.get("User", [""])[-1]] for u in users),
          "sysusers.d creates the unit's User=")
    sysusers = shutil.which("systemd-sysusers")
    if sysusers:
        with tempfile.TemporaryDirectory() as root:
            os.mkdir(os.path.join(root, "etc"))
            r = run([sysusers, "--dry-run", "--root=" + root, paths["sysusers"]])
            check(r.returncode == 0 and "Creating user 'vm-informant'" in r.stdout + r.stderr,
                  "systemd-sysusers reads the sysusers.d file " + r.stderr.strip())
    writable = [p.lstrip("-") for v in s.get("ReadWritePaths", []) for p in v.split()]
    check(writable == [cgroup_dir],
          "unit makes only the managed cgroup %s writable (got %s)" % (cgroup_dir, writable))
    check(any(cgroup_dir + "/cgroup.freeze" in v for v in s.get("ExecStopPost", [])),
          "unit thaws %s after the daemon stopped" % cgroup_dir)

    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("# systemd-analyze not installed: unit verification not run")
        return
    # verify insists that ExecStart exists: check a copy that points into DESTDIR.
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "vm-informant.service")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text.replace(paths["bin_path"], paths["binary"]))
        env = dict(os.environ, MANPATH=paths["mandir"])
        man = [] if shutil.which("man") else ["--man=no"]
        r = run([analyze, "verify"] + man + [copy], env=env)
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out,
              "systemd-analyze verify: no errors, no warnings" + (": " + out if out else ""))
        r = run([analyze, "security", "--offline=true", "--threshold=20", "--no-pager", copy])
        last = (r.stdout.strip().splitlines() or [r.stderr.strip()])[-1]
        if "offline" in r.stderr and "unrecognized" in r.stderr:
            print("# systemd-analyze too old for security --offline: not run")
        else:
            check(r.returncode == 0, "systemd-analyze security: exposure <= 2.0 (" + last + ")")


MAN_SECTIONS = {
    "vm-informant.8": ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION", "SIGNALS",
                       "EXIT STATUS", "ENDPOINTS", "ENVIRONMENT", "METRICS", "FILES", "SEE ALSO"],
    "vm-informant.conf.5": ["NAME", "SYNOPSIS", "DESCRIPTION", "KEYS", "RELOADING", "FILES",
                            "SEE ALSO"],
}


def check_man(path):
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    sections = re.findall(r'^\.SH "?([A-Z ]+?)"?$', text, re.M)
    for want in MAN_SECTIONS[name]:
        check(want in sections, "%s has section %s" % (name, want))
    if not shutil.which("groff"):
        print("# groff not installed: man page rendering not checked")
    else:
        r = run(["groff", "-man", "-ww", "-z", "-Tutf8", path])
        check(r.returncode == 0 and not r.stderr.strip(),
              "%s renders without groff warnings %s" % (name, r.stderr.strip()))
    if not shutil.which("mandoc"):
        print("# mandoc not installed: man page lint not run")
    else:
        r = run(["mandoc", "-Tlint", "-Wall", path])
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out, "%s: mandoc -Tlint is clean %s" % (name, out))
    return text


def scan_keys(text, header, entry, reset=None):
    """(section, key, value) for each line matching the regex entry below a
    line matching header; a line starting with reset ends the section."""
    section = None
    for line in text.splitlines():
        if reset and line.startswith(reset):
            section = None
        m = re.match(header, line)
        if m:
            section = m.group(1)
            continue
        m = re.match(entry, line)
        if m and section:
            yield section, m.group(1), (m.group(2) or "").strip()


def parse_ini(text):
    """{(section, key): value} of INI text, without comments."""
    return {(s, k): re.split(r"\s[#;]", " " + v)[0].strip()
            for s, k, v in scan_keys(text, r"\s*\[(\w+)\]", r"\s*(\w+)\s*=(.*)")}


def man_keys(text):
    """{(section, key): default} from the man page's `.SS [section]` and
    `.B key = default` lines; the list ends at the next .SH."""
    return {(s, k): v.replace("\\-", "-")
            for s, k, v in scan_keys(text, r"\.SS \[(\w+)\]$", r"\.B (\w+) =(?: (.*))?$",
                                     reset=".SH")}


def documented_keys(text):
    """(section, key) pairs an INI text mentions, set or commented out."""
    return {(s, k) for s, k, _ in scan_keys(text, r"\s*\[(\w+)\]", r"\s*[#;]?\s*(\w+)\s*=()")}


def check_config(binary, path, what):
    r = run([binary, "--check-config", "--config", path])
    check(r.returncode == 0, "--check-config accepts the %s (exit %d) %s"
          % (what, r.returncode, r.stderr.strip()))
    return parse_ini(r.stdout)


def check_configs(paths, defaults, man_text, tmp):
    binary = paths["binary"]
    check(man_keys(man_text) == defaults,
          "vm-informant.conf(5) lists every key with the daemon's default (differences: %s)"
          % sorted(set(man_keys(man_text).items()) ^ set(defaults.items())))

    neonvm = check_config(binary, os.path.join(SOURCE, "deploy", "neonvm", "vm-informant.conf"),
                          "NeonVM config")
    check(neonvm.get(("supervisor", "auto_restart")) == "true"
          and neonvm.get(("cgroup", "name")) == "neon-postgres",
          "NeonVM config: supervisor mode, cgroup neon-postgres")

    example = check_config(binary, paths["example"], "installed example config")
    check(example == defaults, "the example config leaves every key at its default")
    with open(paths["example"], encoding="utf-8") as f:
        example_text = f.read()
    check(not parse_ini(example_text), "the example config sets no key (all commented out)")
    with open(paths["doc_example"], encoding="utf-8") as f:
        check(f.read() == example_text, "the documentation example is the same file")
    missing = set(defaults) - documented_keys(example_text)
    check(not missing, "the example config shows every key (missing: %s)" % sorted(missing))

    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w", encoding="utf-8") as f:
        f.write(example_text + "\n[server]\nno_such_key = 1\n")
    r = run([binary, "--check-config", "--config", bad])
    check(r.returncode == 2 and "no_such_key" in r.stderr,
          "--check-config rejects an unknown key with exit 2 naming it")


def daemon_defaults(binary, tmp):
    """The daemon's built-in settings, or None before the daemon has landed."""
    r = run([binary, "--help"])
    if r.returncode != 0 or "--check-config" not in r.stdout:
        return None
    empty = os.path.join(tmp, "empty.conf")
    open(empty, "w", encoding="utf-8").close()
    defaults = check_config(binary, empty, "empty config")
    check(len(defaults) > 30, "--check-config prints the effective settings (%d keys)"
          % len(defaults))
    return defaults


def main():
    with tempfile.TemporaryDirectory(prefix="vmi-destdir-") as destdir:
        r = run(["meson", "install", "-C", BUILD, "--destdir", destdir,
                 "--no-rebuild", "--quiet"])
        if not check(r.returncode == 0, "meson install --destdir"):
            print(r.stdout + r.stderr)
            return 1
        paths = install_paths(destdir)
        for name in ["binary", "unit", "man", "man5", "example", "doc_example", "sysusers"]:
            check(os.path.isfile(paths[name]), "installed " + paths[name][len(destdir):])
        check(os.access(paths["binary"], os.X_OK), "the installed binary is executable")
        defaults = daemon_defaults(paths["binary"], destdir)
        # The unit must carve out the cgroup the daemon manages by default.
        cgroup_dir = "/sys/fs/cgroup/neon-postgres"
        if defaults:
            cgroup_dir = os.path.join(defaults[("cgroup", "root")],
                                      defaults[("cgroup", "name")])
        check_unit(paths, cgroup_dir)
        check_man(paths["man"])
        man_text = check_man(paths["man5"])
        if defaults:
            check_configs(paths, defaults, man_text, destdir)
        else:
            skip("the installed vm-informant has no working --help/--check-config "
                 "(a build without the daemon)")

    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
