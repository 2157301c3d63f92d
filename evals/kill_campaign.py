"""Kill campaign (issue 14): a real `rag serve` SIGKILLed at random moments while it takes and indexes
uploads; no upload that got a 202 may be lost, and the index must pass `rag check` after every restart.

    python evals/kill_campaign.py [--rounds 20] [--seed 14] [--max-delay 6] [--out PATH.json]

Each round, on one index and upload folder: the running server is sent 1-3 uploads (1-3 files each: short
notes and a long report that takes the embedder many batches, all with distinct text) while a timer,
seeded, SIGKILLs it 0.2 s to `--max-delay` s after the first upload starts (a request in flight then
is never acknowledged); the server is started again and
every accepted job (202) is followed through GET /api/jobs/{id} until it is done or failed. A file
counts as indexed when its job says so and its document is listed by GET /api/documents; as failed
visibly when its job reports it failed (with the reason); as lost otherwise (job unknown, unfinished
after `--settle` s, or reported indexed but missing from the index). Then `rag check` runs on the index.
The real components run (the packaged embedder and language model): it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

RAG = [sys.executable, "-m", "rag"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`rag serve` on 127.0.0.1 over the campaign's index and upload folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAG_UPLOAD_DIR": str(root / "uploads"), "RAG_THREADS": "1"}
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> float:
        """Start and wait for /api/health; returns the seconds it took."""
        started = time.monotonic()
        log = open(self.root / "serve.log", "ab")  # noqa: SIM115  (the process holds it)
        self.process = subprocess.Popen(
            [*RAG, "serve", "--index", str(self.root / "index"), "--port", str(self.port)],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"rag serve exited {self.process.returncode}; see {self.root / 'serve.log'}"
                )
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("rag serve did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Upload:
    """One accepted file: its job, and how it ended."""

    round: int
    job: str
    name: str
    outcome: str = "lost"
    detail: str = ""


@dataclass
class Round:
    number: int
    kill_after_s: float
    requests_sent: int = 0
    requests_accepted: int = 0
    jobs_unfinished_at_kill: int = 0
    restart_s: float = 0.0
    settle_s: float = 0.0
    check_exit: int | None = None
    uploads: list[Upload] = field(default_factory=list)


def note(rng: random.Random, round_number: int, n: int) -> tuple[str, bytes]:
    """A short text file of distinct sentences, named so its title is unique to this round."""
    name = f"r{round_number:02d}-note{n}-{rng.randrange(10**6):06d}"
    lines = [
        f"Round {round_number} note {n} line {i}: sample {rng.randrange(10**9)} of the glacier survey."
        for i in range(rng.randint(3, 40))
    ]
    return f"{name}.txt", ("\n".join(lines) + "\n").encode()


def report(rng: random.Random, round_number: int) -> tuple[str, bytes]:
    """A long text file: hundreds of chunks, many embedder batches (seconds of indexing)."""
    name = f"r{round_number:02d}-report-{rng.randrange(10**6):06d}"
    lines = [
        f"Survey {round_number}.{i}: station {rng.randrange(97)} logged {rng.randrange(10**6)} penguins "
        f"near ridge {rng.randrange(13)} on day {i}."
        for i in range(rng.randint(200, 1500))
    ]
    return f"{name}.txt", ("\n\n".join(lines) + "\n").encode()


def unfinished_jobs(root: Path) -> int:
    path = root / "uploads" / ".jobs.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(
            db.execute("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
        )


def send_uploads(server: Server, rng: random.Random, state: Round, killed: threading.Event) -> None:
    """Post 1-3 uploads until the kill; record the files of each one that got a 202."""
    for n in range(rng.randint(1, 3)):
        files = [report(rng, state.number)] if n == 0 else []
        files += [note(rng, state.number, 10 * n + k) for k in range(rng.randint(0 if files else 1, 2))]
        if killed.is_set():
            return
        state.requests_sent += 1
        try:
            response = httpx.post(
                f"{server.url}/api/documents", files=[("files", f) for f in files], timeout=60
            )
        except httpx.TransportError:
            return  # killed while the request was in flight: never acknowledged
        if response.status_code == 202:
            state.requests_accepted += 1
            job = response.json()["id"]
            state.uploads += [Upload(state.number, job, name) for name, _ in files]
        time.sleep(rng.uniform(0, 1.0))


def settle(server: Server, state: Round, deadline_s: float) -> None:
    """Follow every accepted job until done or failed; decide each file's outcome."""
    started = time.monotonic()
    jobs: dict[str, dict] = {}
    pending = {u.job for u in state.uploads}
    while pending and time.monotonic() - started < deadline_s:
        for job_id in sorted(pending):
            response = httpx.get(f"{server.url}/api/jobs/{job_id}", timeout=30)
            if response.status_code == 404:
                jobs[job_id] = {"status": "unknown"}
                pending.discard(job_id)
            elif response.json()["status"] in ("done", "failed"):
                jobs[job_id] = response.json()
                pending.discard(job_id)
        time.sleep(0.5)
    state.settle_s = time.monotonic() - started
    titles = {d["title"] for d in httpx.get(f"{server.url}/api/documents", timeout=60).json()}
    for upload in state.uploads:
        job = jobs.get(upload.job)
        if job is None:
            upload.detail = f"job still unfinished after {deadline_s:.0f} s"
            continue
        if job["status"] == "unknown":
            upload.detail = "job unknown after the restart (404)"
            continue
        entry = next((f for f in job["files"] if f["name"] == upload.name), None)
        if entry is None:
            upload.detail = "file missing from its job"
        elif entry["status"] in ("indexed", "unchanged"):
            stem = upload.name.rsplit(".", 1)[0]
            if stem in titles:
                upload.outcome = "indexed"
            else:
                upload.detail = "job says indexed, but the document is not in the index"
        elif entry["status"] == "failed" and entry.get("error"):
            upload.outcome, upload.detail = "failed_visibly", entry["error"]
        else:
            upload.detail = f"file status {entry['status']!r} in a {job['status']} job"


def run_campaign(rounds: int, seed: int, max_delay: float, settle_s: float, root: Path) -> dict:
    """Run the campaign in `root` (a fresh folder); the summary and every round's record."""
    rng = random.Random(seed)
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments the dough.\n")
    ingest = subprocess.run(
        [*RAG, "ingest", "docs", "--index", "index"], cwd=root, capture_output=True, text=True
    )
    if ingest.returncode != 0:
        raise RuntimeError(f"rag ingest failed: {ingest.stderr}")
    server = Server(root)
    records: list[Round] = []
    started = time.monotonic()
    try:
        first_start = server.start()
        for number in range(1, rounds + 1):
            state = Round(number, kill_after_s=round(rng.uniform(0.2, max_delay), 2))
            killed = threading.Event()

            def kill(state: Round = state, killed: threading.Event = killed) -> None:
                killed.set()
                server.kill()
                state.jobs_unfinished_at_kill = unfinished_jobs(root)

            uploads = threading.Thread(target=send_uploads, args=(server, rng, state, killed))
            timer = threading.Timer(state.kill_after_s, kill)
            timer.start()
            uploads.start()
            timer.join()
            uploads.join()
            state.restart_s = server.start()
            settle(server, state, settle_s)
            check = subprocess.run(
                [*RAG, "check", "--index", "index"], cwd=root, capture_output=True, text=True
            )
            state.check_exit = check.returncode
            records.append(state)
            counts = {
                o: sum(u.outcome == o for u in state.uploads) for o in ("indexed", "failed_visibly", "lost")
            }
            print(
                f"round {number:2d}: kill at {state.kill_after_s:4.1f} s, {state.requests_accepted}/"
                f"{state.requests_sent} uploads accepted, {len(state.uploads)} files ({counts}), "
                f"{state.jobs_unfinished_at_kill} job(s) unfinished at the kill, "
                f"rag check exit {check.returncode}",
                flush=True,
            )
    finally:
        server.stop()
    final_check = subprocess.run(
        [*RAG, "check", "--index", "index"], cwd=root, capture_output=True, text=True
    )
    uploads = [u for r in records for u in r.uploads]
    summary = {
        "rounds": len(records),
        "seed": seed,
        "max_delay_s": max_delay,
        "requests_sent": sum(r.requests_sent for r in records),
        "requests_accepted": sum(r.requests_accepted for r in records),
        "files_accepted": len(uploads),
        "indexed": sum(u.outcome == "indexed" for u in uploads),
        "failed_visibly": sum(u.outcome == "failed_visibly" for u in uploads),
        "lost": sum(u.outcome == "lost" for u in uploads),
        "kills_with_unfinished_jobs": sum(r.jobs_unfinished_at_kill > 0 for r in records),
        "check_failures": sum(r.check_exit != 0 for r in records) + (final_check.returncode != 0),
        "first_start_s": round(first_start, 1),
        "mean_restart_s": round(sum(r.restart_s for r in records) / max(len(records), 1), 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    return {"summary": summary, "rounds": [asdict(r) for r in records]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--max-delay", type=float, default=6.0, help="Latest kill, seconds after the uploads start."
    )
    parser.add_argument(
        "--settle", type=float, default=600.0, help="Seconds a restarted job may take to finish."
    )
    parser.add_argument("--workdir", type=Path, help="Folder to run in (default: a new temporary folder).")
    parser.add_argument("--out", type=Path, default=Path("evals/out/kill_campaign.json"))
    args = parser.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="rag-kill-"))
    result = run_campaign(args.rounds, args.seed, args.max_delay, args.settle, root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    lost = result["summary"]["lost"]
    return 1 if lost or result["summary"]["check_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
