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
import time


def main() -> None:
    result, timeout, command = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    timed_out = False
    started = time.perf_counter()
    child = subprocess.Popen(command)
    try:
        status = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        status = child.wait()
        timed_out = True
    wall = time.perf_counter() - started
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
