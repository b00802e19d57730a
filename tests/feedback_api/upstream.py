"""An OpenAI-compatible upstream for the gateway's tests, run as its own HTTP process:

    python tests/feedback_api/upstream.py PORT MODE   # MODE: ok, slow, fail, ratelimit

``ok`` answers ``/v1/chat/completions`` (streamed or not) with "<model> says: <last user
text>" and a ``usage``; ``slow`` does the same after 3 s; ``fail`` answers 500; ``ratelimit``
429. A streamed answer to a last user text starting "break" is broken off after its second
chunk (the connection is dropped). Every request is counted at ``GET /calls``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODE = sys.argv[2] if len(sys.argv) > 2 else "ok"
app = FastAPI()
calls: list[dict[str, Any]] = []


@app.get("/calls")
def seen() -> list[dict[str, Any]]:
    return calls


@app.post("/v1/chat/completions")
async def complete(request: Request) -> Any:
    body = await request.json()
    calls.append({"model": body.get("model"), "stream": bool(body.get("stream")),
                  "authorization": request.headers.get("authorization")})
    if MODE == "fail":
        return JSONResponse({"error": {"message": "upstream broke"}}, status_code=500)
    if MODE == "ratelimit":
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
    if MODE == "slow":
        await asyncio.sleep(3.0)
    last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    text = f"{body['model']} says: {last}"
    words = text.split(" ")
    prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
    usage = {"prompt_tokens": prompt, "completion_tokens": len(words),
             "total_tokens": prompt + len(words)}
    created, ident = int(time.time()), f"chatcmpl-{len(calls)}"
    if not body.get("stream"):
        return {"id": ident, "object": "chat.completion", "created": created,
                "model": body["model"], "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}]}

    async def events() -> Any:
        for i, word in enumerate(words):
            chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                     "model": body["model"], "choices": [{"index": 0, "finish_reason": None,
                                                          "delta": {"content": (
                                                              word if i == 0 else " " + word)}}]}
            yield f"data: {json.dumps(chunk)}\n\n"
            await asyncio.sleep(0.01)
            if i == 1 and last.startswith("break"):
                raise ConnectionAbortedError("the upstream broke the stream off")
        last_chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                      "model": body["model"], "choices": [], "usage": usage}
        yield f"data: {json.dumps(last_chunk)}\n\ndata: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
