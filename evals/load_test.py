"""A bounded load test of `rag serve`: concurrent clients mixing search and streamed answers.

Starts `rag serve` on 127.0.0.1 over a fresh index of documents/ (or uses --url), runs N clients for a
fixed time, and reports requests served, errors, 503s (queue full, by design), and p50/p95 latency of
search, of the time to the first answer token, and of whole answers. Usage:

    .venv/bin/python evals/load_test.py --clients 20 --duration 60 --out evals/RESULTS-load.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How do I remove a document from the index?",
    "What hardware does rag need?",
    "Which embedding model does rag use?",
    "How do I start the web chat?",
    "Which file formats can rag ingest?",
    "Where is the language model cached?",
    "How does rag cite its sources?",
    "What can I configure with environment variables?",
]


@dataclass
class Tally:
    search_seconds: list[float] = field(default_factory=list)
    first_token_seconds: list[float] = field(default_factory=list)
    first_event_seconds: list[float] = field(default_factory=list)
    """Seconds to the stream's first event of any kind (the chat's first sign of life: a queue position
    or a step)."""
    queued_ahead: list[int] = field(default_factory=list)
    """Per streamed answer: the first queue position shown (answers ahead; 0 when it never waited)."""
    queue_updates: list[list[int]] = field(default_factory=list)
    """Per streamed answer that waited: every queue position shown, in order."""
    answer_seconds: list[float] = field(default_factory=list)
    abstained_without_model: int = 0
    rejected_busy: int = 0
    cut_at_end: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def served(self) -> int:
        return len(self.search_seconds) + len(self.answer_seconds)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def search(client: httpx.AsyncClient, tally: Tally, query: str) -> float:
    started = time.perf_counter()
    response = await client.post("/api/search", json={"query": query, "k": 5})
    if response.status_code != 200 or not response.json().get("passages"):
        tally.errors.append(f"search {response.status_code}: {response.text[:200]}")
        return 0.0
    tally.search_seconds.append(time.perf_counter() - started)
    return 0.0


async def answer(client: httpx.AsyncClient, tally: Tally, question: str) -> float:
    """Stream one answer; returns seconds to wait before the next request (Retry-After on a 503)."""
    started = time.perf_counter()
    first: float | None = None
    first_event: float | None = None
    aheads: list[int] = []
    final = None
    async with client.stream("POST", "/api/answer/stream", json={"question": question}) as response:
        if response.status_code == 503:
            tally.rejected_busy += 1
            return float(response.headers.get("retry-after", "5"))
        if response.status_code != 200:
            tally.errors.append(f"answer {response.status_code}: {(await response.aread())[:200]!r}")
            return 0.0
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if first_event is None:
                    first_event = time.perf_counter() - started
                if event == "status":
                    status = json.loads(line[5:])
                    if status.get("step") == "queued":
                        aheads.append(int(status["ahead"]))
                if event == "token" and first is None:
                    first = time.perf_counter() - started
                elif event == "answer":
                    final = json.loads(line[5:])
                elif event == "error":
                    tally.errors.append(f"answer stream error: {line[5:][:200]}")
                    return 0.0
    if final is None:
        tally.errors.append("answer stream ended without its answer event")
        return 0.0
    tally.answer_seconds.append(time.perf_counter() - started)
    if first_event is not None:
        tally.first_event_seconds.append(first_event)
    tally.queued_ahead.append(aheads[0] if aheads else 0)
    if aheads:
        tally.queue_updates.append(aheads)
    if first is None:
        tally.abstained_without_model += 1
    else:
        tally.first_token_seconds.append(first)
    return 0.0


async def client_loop(url: str, tally: Tally, deadline: float, answer_share: float, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0)) as client:
        while time.monotonic() < deadline:
            question = rng.choice(QUESTIONS)
            try:
                if rng.random() < answer_share:
                    pause = await answer(client, tally, question)
                else:
                    pause = await search(client, tally, question)
            except httpx.HTTPError as exc:
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                pause = 0.0
            if pause:
                await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))


async def one_at_a_time(url: str, answers: int) -> Tally:
    """Answers asked one after another before the load: the model's own latency, without queueing."""
    tally = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600.0)) as client:
        for question in QUESTIONS[1 : 1 + answers]:
            await answer(client, tally, question)
    return tally


async def run(
    url: str, clients: int, duration: float, answer_share: float, grace: float
) -> tuple[Tally, float]:
    tally = Tally()
    started = time.monotonic()
    deadline = started + duration
    tasks = [
        asyncio.create_task(client_loop(url, tally, deadline, answer_share, seed)) for seed in range(clients)
    ]
    done, pending = await asyncio.wait(tasks, timeout=duration + grace)
    for task in pending:
        task.cancel()
    tally.cut_at_end = len(pending)
    for task in done:
        if task.exception() is not None:
            tally.errors.append(repr(task.exception()))
    return tally, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path, port: int) -> subprocess.Popen:
    rag = Path(sys.executable).parent / "rag"
    command = [str(rag), "serve", "--index", str(index), "--port", str(port)]
    uploads = index.parent / "uploads"  # beside the scratch index, never the repository's documents/
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_UPLOAD_DIR": str(uploads)}
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"rag serve exited with {server.returncode}")
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("rag serve did not start in 180 s")


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(
    tally: Tally, alone: Tally, wall: float, args: argparse.Namespace, health: dict, command: str
) -> str:
    rows = [
        ("one client alone: time to first token", alone.first_token_seconds),
        ("one client alone: whole answer", alone.answer_seconds),
        ("search", tally.search_seconds),
        ("answer: first event (queue position or step)", tally.first_event_seconds),
        ("answer: time to first token", tally.first_token_seconds),
        ("answer: whole answer", tally.answer_seconds),
    ]
    lines = [
        "# Load test of `rag serve`",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
        f"shared with other work while measured. Server: one `rag serve` process on 127.0.0.1, generator "
        f"`{health.get('generator')}` ({health.get('generator_backend')}), index of documents/ "
        f"({(health.get('index') or {}).get('chunks')} chunks), answer queue capacity "
        f"{health.get('queue', {}).get('capacity')} (one generating, the rest waiting). One warm-up answer "
        f"before the run took {health['warm_up_seconds']:.1f} s.",
        "",
        f"Load: {args.clients} concurrent clients for {args.duration:.0f} s (then up to {args.grace:.0f} s "
        f"for requests in flight), each sending back-to-back requests: "
        f"{100 * (1 - args.answer_share):.0f}% `POST /api/search`, {100 * args.answer_share:.0f}% "
        f"`POST /api/answer/stream`. Wall time {wall:.0f} s.",
        "",
        "| outcome | count |",
        "| --- | --- |",
        f"| requests served | {tally.served} |",
        f"| searches | {len(tally.search_seconds)} |",
        f"| answers streamed (model ran) | {len(tally.first_token_seconds)} |",
        f"| answers abstained by the evidence gate (no model) | {tally.abstained_without_model} |",
        f"| 503 queue full, with Retry-After (by design; the client waited) | {tally.rejected_busy} |",
        f"| clients still waiting for an answer when the run was cut | {tally.cut_at_end} |",
        f"| errors (goal 0) | {len(tally.errors)} |",
        f"| errors in the one-client baseline | {len(alone.errors)} |",
        "",
        "Latency in seconds. Under load, time to first token is mostly the wait for the model: answers are",
        "generated one at a time, so a request waits for every answer queued before it.",
        "",
        "| latency, seconds | n | p50 | p95 | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, values in rows:
        top = max(values) if values else None
        p50, p95 = fmt(percentile(values, 50)), fmt(percentile(values, 95))
        lines.append(f"| {name} | {len(values)} | {p50} | {p95} | {fmt(top)} |")
    if tally.queued_ahead:
        waited = [a for a in tally.queued_ahead if a]
        shown = ", ".join(" > ".join(map(str, u)) for u in tally.queue_updates[:8])
        lines += [
            "",
            f"Queue positions (`status` events with step `queued`): {len(waited)} of "
            f"{len(tally.queued_ahead)} streamed answers waited; the first position shown was "
            f"{_counts(tally.queued_ahead)} (answers ahead: count). Positions each waiting answer was "
            f"shown, in order (first 8): {shown or 'none'}.",
        ]
    if tally.errors:
        lines += ["", "Errors (first 10):", ""] + [f"- `{error}`" for error in tally.errors[:10]]
    if tally.first_token_seconds:
        lines += [
            "",
            f"Mean answer throughput: {len(tally.answer_seconds) / wall * 60:.1f} answers per minute.",
        ]
    return "\n".join(lines) + "\n"


def _counts(values: list[int]) -> str:
    return ", ".join(f"{v}: {values.count(v)}" for v in sorted(set(values)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="A running server (default: start `rag serve` over a fresh index).")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
    parser.add_argument("--grace", type=float, default=60.0, help="Seconds to let requests in flight finish.")
    parser.add_argument("--answer-share", type=float, default=0.2, help="Share of requests that are answers.")
    parser.add_argument(
        "--baseline", type=int, default=3, help="Answers asked one at a time before the load."
    )
    parser.add_argument("--documents", type=Path, default=ROOT / "documents")
    parser.add_argument("--out", type=Path, help="Write the Markdown report here.")
    args = parser.parse_args()
    command = "python evals/load_test.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    server = None
    with tempfile.TemporaryDirectory(prefix="rag-load-") as scratch:
        url = args.url
        if url is None:
            index = Path(scratch) / "index"
            rag = Path(sys.executable).parent / "rag"
            subprocess.run(
                [str(rag), "ingest", str(args.documents), "--index", str(index)], cwd=ROOT, check=True
            )
            port = free_port()
            server = start_server(index, port)
            url = f"http://127.0.0.1:{port}"
        try:
            health = httpx.get(f"{url}/api/health", timeout=10).json()
            warm = time.perf_counter()  # the first answer pages the model in: keep it out of the figures
            httpx.post(f"{url}/api/answer", json={"question": QUESTIONS[0]}, timeout=600).raise_for_status()
            health["warm_up_seconds"] = time.perf_counter() - warm
            alone = asyncio.run(one_at_a_time(url, args.baseline))
            tally, wall = asyncio.run(run(url, args.clients, args.duration, args.answer_share, args.grace))
            final_health = httpx.get(f"{url}/api/health", timeout=30).json()
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
    text = report(tally, alone, wall, args, health, command)
    if final_health.get("status") != "ok":
        text += f"\nServer health after the run: {final_health.get('status')}\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
