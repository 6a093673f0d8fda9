"""Runs one command and reports what it cost, for the comparison benchmark.

    python3 measure.py RESULT.json TIMEOUT_SECONDS PROGRAM [ARGS...]

The command inherits this process's stdin, stdout, stderr and environment. RESULT.json gets
its exit status, wall time (from just before it is started until it is reaped), the user and
system CPU time of it and every descendant it waited for, and the peak resident set size of
the largest of them (getrusage(RUSAGE_CHILDREN), as wait4 reports it), in KiB.
"""

import json
import resource
import subprocess
import sys
import threading
import time


def main() -> None:
    result, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    started = time.perf_counter()
    child = subprocess.Popen(command)
    # The timeout kills from a timer thread while this one blocks in waitpid: the wall time
    # is taken the moment the child ends. (`Popen.wait(timeout=…)` polls with sleeps that
    # grow to 50 ms, which added up to 50 ms to every figure.)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        child.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    status = child.wait()
    wall = time.perf_counter() - started
    timer.cancel()
    timed_out = killed.is_set()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(result, "w", encoding="utf-8") as out:
        json.dump(
            {
                "status": status,
                "timed_out": timed_out,
                "wall": wall,
                "user": usage.ru_utime,
                "sys": usage.ru_stime,
                "maxrss_kib": usage.ru_maxrss,
            },
            out,
        )


if __name__ == "__main__":
    main()
