"""Helpers shared by the client scripts run from test/python_test.go.

Each check prints what passed, so the Go test log shows what was covered,
and a failed one exits non-zero with a message naming it. Scripts import
this module from their own directory, which Python puts on sys.path.
"""

import sys
import time
import traceback


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def ok(msg):
    print("ok: " + msg, flush=True)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(main):
    """Runs main; any client exception is a failed check, with its traceback."""
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:
        traceback.print_exc()
        fail("%s: %s" % (type(e).__name__, e))


def script_deadline(seconds):
    """Returns remaining(limit): the time a call may wait, at most limit
    and at most what is left of the script's seconds (so the Go test never
    waits on a hang); once they have passed, a failed check."""
    deadline = time.monotonic() + seconds

    def remaining(limit):
        left = min(limit, deadline - time.monotonic())
        if left <= 0:
            fail("script deadline passed")
        return left

    return remaining
