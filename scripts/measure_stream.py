#!/usr/bin/env python3
"""Time to first token and decode speed of one streaming image request.

Usage: scripts/measure_stream.py [PORT] [RUNS] [WxH] [MAX_TOKENS]
Sends a 448x336 (or WxH) solid PNG (a different colour each run, so no run reuses the
previous one's cached prefix) plus a question, greedy, max_tokens 256, and
prints TTFT (request sent -> first content delta) and decode tokens/s (after
the first token) for each run. Standard library only.
"""
import base64, http.client, json, struct, sys, time, zlib


def png(w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
width, height = map(int, (sys.argv[3] if len(sys.argv) > 3 else "448x336").split("x"))
max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 256
for run in range(runs):
    url = "data:image/png;base64," + base64.b64encode(png(width, height, (200, 30 + run, 30))).decode()
    body = json.dumps({
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": "Describe this image."}]}],
        "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True},
    })
    conn = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    first, usage = None, None
    for line in resp:
        line = line.decode().strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
            first = time.perf_counter()
        if chunk.get("usage"):
            usage = chunk["usage"]
    t1 = time.perf_counter()
    n = usage["completion_tokens"]
    print(f"TTFT {1000 * (first - t0):.1f} ms, decode {(n - 1) / (t1 - first):.0f} tokens/s, usage {json.dumps(usage)}")
