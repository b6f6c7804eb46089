"""Time to first token for one video on two OpenAI-compatible servers.

Sends the same clip ROUNDS times to each server, alternating, each time
behind a different system line (so no prefix cache can reuse the video)
and streams one token. Prints a markdown table of median first-token
times, prompt tokens and the ratio. Tessera's decode (probe, sample,
ffmpeg, preprocessing, no encoding) is timed on its price preview.

    python3 scripts/bench_video.py CLIP FPS TESSERA_URL LLAMA_SERVER_URL [ROUNDS]
"""
import base64
import json
import statistics
import sys
import time
import urllib.request


def post(url, body, stream=False):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    return urllib.request.urlopen(req, timeout=1800)


def first_token(base, part, i):
    body = {"max_tokens": 1, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": f"Round {i}."},
                         {"role": "user", "content": [part, {"type": "text", "text": "What happens?"}]}]}
    start = time.monotonic()
    ttft, prompt = None, None
    with post(base + "/v1/chat/completions", body) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk.get("choices"):
                ttft = time.monotonic() - start
            if chunk.get("usage"):
                prompt = chunk["usage"]["prompt_tokens"]
    return ttft, prompt


def main():
    clip, fps, tessera, llama = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    data = base64.b64encode(open(clip, "rb").read()).decode()
    ours = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + data, "fps": fps}}
    theirs = {"type": "input_video", "input_video": {"data": data}}
    times = {"tessera": [], "llama-server": []}
    prompts = {}
    decode = []
    for i in range(rounds):
        for name, base, part in (("tessera", tessera, ours), ("llama-server", llama, theirs)):
            t, p = first_token(base, part, i)
            times[name].append(t)
            prompts[name] = p
        body = {"max_tokens": 1, "messages": [{"role": "user", "content": [ours]}]}
        start = time.monotonic()
        with post(tessera + "/v1/chat/completions/input_tokens", body) as r:
            preview = json.load(r)
        decode.append(time.monotonic() - start)
    v = preview["videos"][0]
    t, l = statistics.median(times["tessera"]), statistics.median(times["llama-server"])
    print(f"| {fps:g} fps | {v['frames']} frames at {v['frame_width']}x{v['frame_height']} "
          f"| {prompts['tessera']} / {prompts['llama-server']} | {statistics.median(decode):.2f} s "
          f"| {t:.2f} s | {l:.2f} s | {t / l:.2f}x |")


if __name__ == "__main__":
    main()
