#!/usr/bin/env python3
"""Render throughput: one LocustTest, and a stream of 1,000 (CPU time, no cluster).

Usage: python benchmarks/bench_render.py [--count 1000] [--repeat 5]
Prints the median of the repeats; numbers go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "env-and-secrets.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    test = yaml.safe_load(EXAMPLE.read_text())
    config = OperatorConfig()

    started = time.perf_counter()
    render(copy.deepcopy(test), config)
    cold = time.perf_counter() - started  # loads the CRD, compiles CEL rules and templates

    singles, batches = [], []
    for _ in range(options.repeat):
        started = time.perf_counter()
        render(copy.deepcopy(test), config)
        singles.append(time.perf_counter() - started)
        tests = []
        for index in range(options.count):
            item = copy.deepcopy(test)
            item["metadata"]["name"] = f"load-{index}"
            tests.append(item)
        started = time.perf_counter()
        for item in tests:
            render(item, config)
        batches.append(time.perf_counter() - started)
    print(f"first render in a process (CRD load, CEL compile): {cold * 1000:.0f} ms")
    print(f"one LocustTest (warm), median of {options.repeat}: {statistics.median(singles) * 1000:.1f} ms")
    print(f"{options.count} LocustTests, median of {options.repeat}: {statistics.median(batches):.2f} s "
          f"({statistics.median(batches) / options.count * 1000:.2f} ms each)")


if __name__ == "__main__":
    main()
