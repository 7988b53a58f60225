"""A full queue answers 429 and a client that disconnects mid-stream does not stop the server
(run by tests/cli_serve.rs against `r1 serve --max-batch 1 --max-queue 1`).

usage: queue_client.py BASE_URL MODEL_NAME
"""
import concurrent.futures
import sys

import openai

base, name = sys.argv[1:3]
client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=120)


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


def one(i):
    try:
        r = client.completions.create(model=name, prompt=f"request {i}", temperature=1.0, seed=i, max_tokens=200)
        return 200, r
    except openai.APIStatusError as e:
        return e.status_code, e.body


with concurrent.futures.ThreadPoolExecutor(12) as pool:
    results = list(pool.map(one, range(12)))
codes = [c for c, _ in results]
limited = [b for c, b in results if c == 429]
check(codes.count(200) >= 1 and len(limited) >= 1 and set(codes) <= {200, 429}, f"a full queue answers 429: {codes}")
check(all(b.get("code") == "rate_limit_exceeded" for b in limited), "429 in OpenAI's error shape")

stream = client.completions.create(model=name, prompt="going away", temperature=1.0, seed=1, max_tokens=200, stream=True)
for n, _ in enumerate(stream):
    if n == 2:
        break
stream.close()
r = client.completions.create(model=name, prompt="still there?", temperature=0, max_tokens=8)
check(len(r.choices) == 1, "the server answers after a client disconnected mid-stream")
print("all checks passed")
