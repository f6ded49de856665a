#!/usr/bin/env python3
"""Runs a command and prints one JSON line: wall seconds, the CPU seconds (user, system)
and peak RSS (KiB, the largest process) of it and every descendant it waited for."""
import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "code": proc.returncode,
    "seconds": seconds,
    "cpu_user": usage.ru_utime,
    "cpu_sys": usage.ru_stime,
    "max_rss_kib": usage.ru_maxrss,
    "stderr": proc.stderr.decode(errors="replace")[-2000:] if proc.returncode else "",
}))
