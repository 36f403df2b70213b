"""Writes the chunks of a simulation as JSON Lines, one event per line:
`python3 items.py CHUNKS SAMPLES > items.jsonl` (default: 1000 chunks of 10000 samples)."""
import json
import sys

chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
samples = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
for seed in range(chunks):
    print(json.dumps({"seed": seed, "samples": samples}))
