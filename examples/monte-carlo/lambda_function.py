"""One chunk of a Monte Carlo simulation (seed 001: "a monte-carlo simulation can be run
by sending each chunk to the API separately").

Each chunk draws `samples` points in the unit square from its own seeded generator and
counts those inside the quarter circle: inside / samples estimates pi / 4. The chunks are
independent, so `modelfn map` runs them in parallel, and `estimate.py` adds them up.
"""
import random

MAX_SAMPLES = 10_000_000


def chunk(seed, samples):
    """Points of chunk `seed` inside the quarter circle, out of `samples`."""
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x = rng.random()
        y = rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def lambda_handler(event, context):
    seed = int(event["seed"])
    samples = int(event["samples"])
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError("samples must be between 1 and %d" % MAX_SAMPLES)
    return {"seed": seed, "samples": samples, "inside": chunk(seed, samples)}
