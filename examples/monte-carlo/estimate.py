"""Adds up the chunks into an estimate of pi.

`python3 estimate.py results.jsonl` reads what `modelfn map --results-only` wrote;
`python3 estimate.py --direct items.jsonl` computes the same chunks here, in one process,
for comparison. Both print `pi ~ ESTIMATE (INSIDE of SAMPLES points, N chunks)`.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lambda_function import chunk  # noqa: E402

args = sys.argv[1:]
direct = args[:1] == ["--direct"]
path = args[-1] if args else "results.jsonl"
inside = samples = chunks = 0
with open(path) as lines:
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        if item is None:
            sys.exit("a chunk failed (null): run the map again")
        n = int(item["samples"])
        inside += chunk(int(item["seed"]), n) if direct else int(item["inside"])
        samples += n
        chunks += 1
print("pi ~ %.6f (%d of %d points, %d chunks)" % (4.0 * inside / samples, inside, samples, chunks))
