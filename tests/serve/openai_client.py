"""Drives `r1 serve` with the official `openai` Python client (run by tests/cli_serve.rs).

usage: openai_client.py BASE_URL MODEL_NAME GREEDY_TEXT_FILE API_KEY SAME_ARCH_DIR OTHER_ARCH_DIR
Exits non-zero with a message on the first failed check.
"""
import concurrent.futures
import json
import sys
import urllib.error
import urllib.request

import openai

base, name, greedy_file, key, same_dir, other_dir = sys.argv[1:7]
want_greedy = open(greedy_file, encoding="utf-8").read()
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120)
MSG = [{"role": "user", "content": "What is 2 + 3?"}]


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")
    print(f"ok: {what}")


models = client.models.list()
check([m.id for m in models.data] == [name], "GET /v1/models lists the served model")

r = client.chat.completions.create(model=name, messages=MSG, temperature=0, max_tokens=24)
greedy = r.choices[0].message.content
check(greedy == want_greedy, f"greedy chat equals r1 generate --chat --greedy ({greedy!r} vs {want_greedy!r})")
check(r.usage.completion_tokens >= 1 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage adds up")
check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason")

parts = []
finishes = []
for chunk in client.chat.completions.create(model=name, messages=MSG, temperature=0, max_tokens=24, stream=True):
    for c in chunk.choices:
        if c.delta.content:
            parts.append(c.delta.content)
        if c.finish_reason:
            finishes.append(c.finish_reason)
check("".join(parts) == greedy, "streamed deltas concatenate to the non-streamed text")
check(finishes == [r.choices[0].finish_reason], "one finish_reason in the stream")

r4 = client.chat.completions.create(model=name, messages=MSG, n=4, temperature=1.0, seed=3, max_tokens=12)
check(len(r4.choices) == 4 and sorted(c.index for c in r4.choices) == [0, 1, 2, 3], "n = 4 gives four choices")
again = client.chat.completions.create(model=name, messages=MSG, n=4, temperature=1.0, seed=3, max_tokens=12)
check([c.message.content for c in again.choices] == [c.message.content for c in r4.choices], "the same seed gives the same samples")

lp = client.chat.completions.create(model=name, messages=MSG, temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
content = lp.choices[0].logprobs.content
check(len(content) == lp.usage.completion_tokens and all(len(t.top_logprobs) == 3 for t in content), "logprobs with top_logprobs")
check(all(t.logprob <= 0 and abs(t.logprob - t.top_logprobs[0].logprob) < 1e-5 for t in content), "greedy tokens are their top alternative")

stop_at = greedy[3:6]
if stop_at:
    s = client.chat.completions.create(model=name, messages=MSG, temperature=0, max_tokens=24, stop=[stop_at])
    check(s.choices[0].message.content == greedy[: greedy.find(stop_at)] and s.choices[0].finish_reason == "stop", "stop cuts before the stop string")

c = client.completions.create(model=name, prompt="1 + 1 =", temperature=0, max_tokens=8)
check(len(c.choices) == 1 and isinstance(c.choices[0].text, str), "text completion")
cs = "".join(x.choices[0].text for x in client.completions.create(model=name, prompt="1 + 1 =", temperature=0, max_tokens=8, stream=True) if x.choices)
check(cs == c.choices[0].text, "streamed text completion equals the whole one")


def one(i):
    return client.chat.completions.create(model=name, messages=[{"role": "user", "content": f"item {i}"}], temperature=0, max_tokens=16)


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    results = list(pool.map(one, range(16)))
check(len(results) == 16 and all(x.choices[0].finish_reason for x in results), "16 concurrent requests all succeed")
solo = one(5)
check(solo.choices[0].message.content == results[5].choices[0].message.content, "greedy output alone equals greedy output among 15 others")


def expect_error(status, fn, what, code=None):
    try:
        fn()
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        ok = e.status_code == status and "message" in body and "type" in body and "param" in body and "code" in body
        if code is not None:
            ok = ok and body.get("code") == code
        check(ok, f"{what}: {e.status_code} {body}")
        return
    sys.exit(f"FAILED: {what}: no error")


def raw(body, headers=None):
    req = urllib.request.Request(base + "/chat/completions", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    return 200, {}


status, body = raw(b"{not json")
check(status == 400 and body["error"]["type"] == "invalid_request_error", f"malformed JSON: {status} {body}")
expect_error(400, lambda: client.chat.completions.create(model=name, messages=MSG, temperature="hot"), "a wrong type")
expect_error(404, lambda: client.chat.completions.create(model="no-such-model", messages=MSG), "an unknown model", "model_not_found")
expect_error(400, lambda: client.chat.completions.create(model=name, messages=MSG, max_tokens=100000), "prompt plus max_tokens over the context", "context_length_exceeded")
status, body = raw(json.dumps({"model": name, "messages": [{"role": "user", "content": "x" * (2 << 20)}]}).encode())
check(status == 413 and "error" in body, f"a body over the size limit: {status}")
bad = openai.OpenAI(base_url=base, api_key="wrong", max_retries=0)
expect_error(401, lambda: bad.models.list(), "a wrong key", "invalid_api_key")
status, body = raw(json.dumps({"model": name, "messages": MSG}).encode(), {"Authorization": ""})
check(status == 401, f"a missing key: {status}")

def load(path):
    req = urllib.request.Request(base + "/load_weights", data=json.dumps({"path": path}).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


status, body = load(other_dir)
check(status == 400 and "architecture" in body["error"]["message"], f"load_weights refuses another architecture: {status}")
status, body = load(same_dir)
check(status == 200 and body.get("success") is True, f"load_weights swaps in a checkpoint of the same architecture: {status} {body}")

after = client.chat.completions.create(model=name, messages=MSG, temperature=0, max_tokens=24)
check(after.choices[0].message.content == greedy, "the server answers after every bad request")
print("all checks passed")
