"""A time guard for the tests of bounded work on hostile input.

The tests check behaviour (the right answer) and, where they can, a deterministic count of the work done. A time
limit is only a guard against the old quadratic code, which took minutes on these inputs: the limit is many times
what the bounded code needs, counts CPU seconds of this process (so a busy machine does not make it fail), and an
alarm stops a runaway computation after `hang_seconds` of wall time, so that a regression fails instead of hanging.
"""

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Hang(AssertionError):
    pass


@contextmanager
def cpu_budget(seconds: float, *, hang_seconds: int = 60) -> Iterator[None]:
    """Fail when the block uses more than `seconds` of CPU, or runs for `hang_seconds` of wall time."""

    def stop(signum, frame):
        raise Hang(f"still running after {hang_seconds} s: the work is not bounded")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(hang_seconds)
    started = time.process_time()
    try:
        yield
    except Hang as exc:
        # raised wherever the alarm found the code (even in frames pytest cannot show): report it from here instead
        raise AssertionError(str(exc)) from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    used = time.process_time() - started
    assert used < seconds, f"{used:.2f} s of CPU; the guard is {seconds} s"
