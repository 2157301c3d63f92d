"""Peak resident memory of `rag serve` after answering one question.

    python evals/bench_serve_memory.py [--index index/default] [--port 8765]

Starts `rag serve` as a subprocess, waits for /api/health, posts one question to /api/answer, then
reads the server's peak RSS (VmHWM) and current RSS (VmRSS) from /proc. Results: evals/out/serve_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=Path("index/default"))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--question", default="Which port does rag serve use by default?")
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--index", str(args.index), "--port", str(args.port)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("server did not start")
        started_rss = proc_status_kib(server.pid, "VmRSS")
        request = urllib.request.Request(
            base + "/api/answer",
            data=json.dumps({"question": args.question}).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.load(urllib.request.urlopen(request, timeout=600))
        result = {
            "question": args.question,
            "answer_chars": len(answer["answer"]),
            "citations": len(answer["citations"]),
            "rss_after_start_mib": round(started_rss / 1024, 1),
            "rss_after_answer_mib": round(proc_status_kib(server.pid, "VmRSS") / 1024, 1),
            "peak_rss_mib": round(proc_status_kib(server.pid, "VmHWM") / 1024, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_memory.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
