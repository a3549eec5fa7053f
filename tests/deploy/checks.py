# SPDX-License-Identifier: Apache-2.0
"""Shared by the deploy tests: named checks that print "ok"/"FAIL" lines
and the exit status meson expects (0 pass, 1 fail, 77 skip)."""

failures = []
skips = []


def check(ok, what):
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failures.append(what)
    return ok


def skip(reason):
    """Something the check needs is missing; the test ends as skipped
    unless a check failed."""
    skips.append(reason)


def exit_status():
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    if skips:
        print("SKIP: " + "; ".join(skips))
        return 77
    return 0
