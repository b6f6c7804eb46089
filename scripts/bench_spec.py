"""Decode speed with and without speculation, on two servers' chat routes.

Streams one greedy answer of MAX_TOKENS per prompt and round, and times
the tokens after the first (the decode, not the prompt). Prints a
markdown row per prompt: median tokens per second.

    python3 scripts/bench_spec.py LABEL URL [ROUNDS] [MAX_TOKENS]
"""
import json
import statistics
import sys
import time
import urllib.request

PROMPTS = {
    "copy-heavy": "Copy this list exactly, line by line:\n" + "".join(
        f"item {i}: {n} boxes of nails, {n % 7} hammers, {n * 3} m of rope\n"
        for i, n in enumerate([12, 40, 7, 19, 33, 28, 5, 61]))
    + "Now copy the list again:\n",
    "free-writing": "Write a short story about a lighthouse keeper who finds a message in a bottle.",
}


def decode_rate(url, prompt, max_tokens, i):
    body = {"max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": f"Round {i}."},
                         {"role": "user", "content": prompt}]}
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    first = end = None
    tokens = 0
    with urllib.request.urlopen(req, timeout=1800) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and first is None:
                first = time.monotonic()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            end = time.monotonic()
    return (tokens - 1) / (end - first)


def main():
    label, url = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 128
    for name, prompt in PROMPTS.items():
        rates = [decode_rate(url, prompt, max_tokens, i) for i in range(rounds)]
        print(f"| {label} | {name} | {statistics.median(rates):.1f} tokens/s |")


if __name__ == "__main__":
    main()
