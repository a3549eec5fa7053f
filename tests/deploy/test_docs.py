#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The documents the sources cite live in the repository:

- every "docs/NAME.md §N" in a comment names a file in docs/ with a
  heading numbered N;
- no file cites the protocol specs kept outside the repository (users
  clone it without them): no "spec §", no agent-protocol.md,
  monitor-protocol.md, interface.md or vm-e2e-notes.md outside docs/.

tests/vectors/ holds byte-exact copies of outside vectors (one mentions
its original document).
"""
import os
import re
import subprocess
import sys

from checks import check, exit_status

SOURCE = os.environ.get("VMI_SOURCE_DIR", ".")
OUTSIDE = re.compile(r"spec §|(?<![\w/])(agent-protocol|monitor-protocol|interface|vm-e2e-notes)\.md\b")
CITE = re.compile(r"docs/([a-z-]+\.md)((?:[ ,]+§[0-9.]+(?:[–-]§?[0-9.]+)?)*)")


def tracked():
    r = subprocess.run(["git", "-C", SOURCE, "ls-files"], capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:  # not a checkout: walk the tree
        return [os.path.relpath(os.path.join(d, f), SOURCE)
                for d, _, fs in os.walk(SOURCE) for f in fs if "/.git" not in d]
    return r.stdout.split()


def headings(path):
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"^#+ ([0-9]+(?:\.[0-9]+)?)\.? ", f.read(), re.M))


def main():
    files = [f for f in tracked() if not f.startswith(("tests/vectors/", "build"))
             and os.path.isfile(os.path.join(SOURCE, f))]
    cited = 0
    for rel in files:
        try:
            with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if not rel.startswith("docs/") and rel != "tests/deploy/test_docs.py":
            for n, line in enumerate(text.splitlines(), 1):
                m = OUTSIDE.search(line)
                if m and m.group(1) and "docs/%s.md" % m.group(1) in line:
                    continue  # the name of our own docs/ file, linked there
                if m:
                    check(False, "%s:%d cites a document outside the repository: %s"
                          % (rel, n, line.strip()))
        # A citation may wrap onto the next comment line.
        flat = re.sub(r"\n\s*(?:\*|#|//)\s*", " ", text)
        for m in CITE.finditer(flat):
            doc = os.path.join(SOURCE, "docs", m.group(1))
            if not check(os.path.isfile(doc), "%s cites docs/%s, which exists" % (rel, m.group(1))):
                continue
            have = headings(doc)
            for sec in re.findall(r"§([0-9.]+)", m.group(2)):
                cited += 1
                sec = sec.rstrip(".")
                check(sec in have, "%s: docs/%s has a section %s" % (rel, m.group(1), sec))
    check(cited >= 25, "the sources cite docs/ sections (%d citations)" % cited)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
