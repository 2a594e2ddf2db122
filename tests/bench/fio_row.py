#!/usr/bin/env python3
"""fio_row.py: one fio JSON result as the numbers tests/bench/run.sh records.

    fio_row.py FIO.json SERVER_CPU_SECONDS WALL_SECONDS

Prints, space-separated: ios iops mbps lat_avg_us lat_p50_us lat_p99_us
lat_p999_us lat_max_us client_cpu_us_per_io client_cpu_pct
server_cpu_us_per_io server_cpu_pct.  Latency is fio's completion latency
(submission to completion), of the job's reads, or of its writes if it did
no reads.  fio may print lines before its JSON; they are skipped.
"""
import json
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: fio_row.py FIO.json SERVER_CPU_SECONDS WALL_SECONDS")
    text = open(sys.argv[1]).read()
    start = text.find("{")
    if start < 0:
        sys.exit("fio_row.py: no JSON in " + sys.argv[1])
    job = json.loads(text[start:])["jobs"][0]
    rd = job["read"]
    if rd["total_ios"] <= 0:
        rd = job["write"]
    ios = rd["total_ios"]
    secs = job["job_runtime"] / 1000.0
    if ios <= 0 or secs <= 0:
        sys.exit("fio_row.py: fio did no I/O")
    clat = rd["clat_ns"]
    pct = clat.get("percentile", {})

    def us(v):
        return "%.2f" % (v / 1000.0)

    ccpu_pct = job["usr_cpu"] + job["sys_cpu"]
    scpu = float(sys.argv[2])
    wall = float(sys.argv[3])
    print(ios, "%.0f" % rd["iops"], "%.1f" % (rd["bw_bytes"] / 1e6),
          us(clat["mean"]), us(pct.get("50.000000", 0)),
          us(pct.get("99.000000", 0)), us(pct.get("99.900000", 0)),
          us(clat["max"]),
          "%.3f" % (ccpu_pct / 100.0 * secs * 1e6 / ios), "%.1f" % ccpu_pct,
          "%.3f" % (scpu * 1e6 / ios),
          "%.1f" % (scpu * 100 / wall if wall > 0 else 0))


if __name__ == "__main__":
    main()
