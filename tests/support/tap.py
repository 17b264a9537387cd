"""Minimal TAP runner for the Python test scripts: each test is a function taking one fixture."""
import sys
import traceback


def run(tests, fixture):
    """Runs tests(fixture) in order, prints TAP lines; returns the number of failures."""
    failed = 0
    for i, fn in enumerate(tests, 1):
        try:
            fn(fixture)
            print(f"ok {i} - {fn.__name__}")
        except Exception:
            failed += 1
            print(f"not ok {i} - {fn.__name__}")
            print("\n".join("# " + line for line in traceback.format_exc().splitlines()))
        sys.stdout.flush()
    return failed
