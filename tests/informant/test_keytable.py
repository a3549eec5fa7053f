#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One key table (informant/config.c) and its three documents agree:

- README.md's Configuration tables: every key once, with the table's
  default and its Reload rule (live or restart), and no key the daemon
  does not have;
- vm-informant.conf(5): every key with its default and rule;
- deploy/vm-informant.conf.example: every key shown, commented out, with
  its default.

Usage: test_keytable.py KEYTABLE_DUMP (build/tests/informant/keytable-dump).
"""
import os
import re
import subprocess
import sys

SOURCE = os.environ.get("VMI_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
failures = []


def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)


def read(*parts):
    with open(os.path.join(SOURCE, *parts), encoding="utf-8") as f:
        return f.read()


def key_table(dump):
    out = subprocess.run([dump], capture_output=True, text=True, check=True, timeout=10).stdout
    table = {}
    for line in out.splitlines():
        section, name, dflt, reload, allowed = line.split("\t")
        table[(section, name)] = (dflt, reload)
    return table


def readme_rows(text):
    """{(section, key): (default cell, reload cell)} from the Configuration
    tables; a row's section is its own `[section]` or the heading's."""
    part = text[text.index("## Configuration\n"):text.index("## HTTP API\n")]
    rows, section, dups = {}, None, []
    for line in part.splitlines():
        m = re.match(r"^### `\[(\w+)\]`", line)
        if m:
            section = m.group(1)
        m = re.match(r"^\| `(?:\[(\w+)\] )?(\w+)` \| ([^|]*) \|.*?\| (live|restart) \|", line)
        if m:
            key = (m.group(1) or section, m.group(2))
            if key in rows:
                dups.append(key)
            rows[key] = (m.group(3).strip(), m.group(4))
    return rows, dups


def readme_default(cell):
    return "" if cell == "empty" else cell.strip("`")


def man_rows(text):
    """{(section, key): (default, reload)} from vm-informant.conf(5): a
    `.SS [section]` heading, then `.B key = default` and a line naming
    "Reload: live" or "Reload: restart" in the key's paragraph."""
    rows, section, key = {}, None, None
    for line in text.splitlines():
        m = re.match(r"^\.SS \[(\w+)\]$", line)
        if m:
            section, key = m.group(1), None
            continue
        if line.startswith(".SH"):
            section = None
        m = re.match(r"^\.B (\w+) =(?: (.*))?$", line)
        if m and section:
            key = (section, m.group(1))
            rows[key] = ((m.group(2) or "").replace("\\-", "-"), None)
            continue
        m = re.search(r"Reload: \\fB(live|restart)\\fR", line)
        if m and key:
            rows[key] = (rows[key][0], m.group(1))
    return rows


def main():
    table = key_table(sys.argv[1])
    check(len(table) >= 40, "the key table has every key (%d)" % len(table))

    rows, dups = readme_rows(read("README.md"))
    check(not dups, "README.md lists each key once (twice: %s)" % dups)
    check(set(rows) == set(table), "README.md lists exactly the daemon's keys "
          "(missing %s, unknown %s)" % (sorted(set(table) - set(rows)),
                                       sorted(set(rows) - set(table))))
    for key, (dflt, reload) in sorted(table.items()):
        if key not in rows:
            continue
        cell, rule = rows[key]
        check(readme_default(cell) == dflt, "README.md: [%s] %s default %s (table: %r)"
              % (key + (cell, dflt)))
        check(rule == reload, "README.md: [%s] %s reload %s (table: %s)"
              % (key + (rule, reload)))

    man_path = os.path.join(SOURCE, "deploy", "vm-informant.conf.5")
    man = man_rows(read("deploy", "vm-informant.conf.5")) if os.path.exists(man_path) else {}
    check(set(man) == set(table), "vm-informant.conf(5) lists exactly the daemon's keys "
          "(missing %s, unknown %s)" % (sorted(set(table) - set(man)),
                                       sorted(set(man) - set(table))))
    for key, want in sorted(table.items()):
        if key in man:
            check(man[key] == want, "vm-informant.conf(5): [%s] %s = %r, reload %s (table: %r, %s)"
                  % (key + man[key] + want))

    example = read("deploy", "vm-informant.conf.example")
    section, shown = None, {}
    for line in example.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
        m = re.match(r"^#(\w+) =(.*)$", line)
        if m and section:
            shown[(section, m.group(1))] = re.split(r"\s[#;]", " " + m.group(2))[0].strip()
    check({k: v for k, v in shown.items()} == {k: v[0] for k, v in table.items()},
          "the example shows every key, commented out, with its default (differences: %s)"
          % sorted(set(shown.items()) ^ {(k, v[0]) for k, v in table.items()}))

    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
