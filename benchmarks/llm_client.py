"""CPU that the LLM backend itself costs per message: the ceiling of one worker process.

    python benchmarks/llm_client.py                  # 64 threads, 200 ms stand-in, 3,000 messages

`triage run` classifies on a thread pool, and one Python process runs Python code on one core at a
time (the GIL). So a worker's messages/s can never exceed 1000 / (CPU ms per message); this measures
the part of that the LLM call takes: LLMClassifier.classify (redaction, prompt, the official openai
client, validation) from as many threads as the worker would use, against the same stand-in as
benchmarks/throughput.py. It counts only the classifying threads' CPU (time.thread_time), not the
stand-in's, and prints it beside the single-process ceiling it implies. Compare with `worker CPU
ms/msg` of throughput.py: the difference is the rest of the pipeline (Kafka, store, outbox, logging).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.throughput import messages  # noqa: E402
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI  # noqa: E402
from triage.classify.categories import load_categories  # noqa: E402
from triage.classify.llm import LLMClassifier  # noqa: E402
from triage.message import parse_message  # noqa: E402
from triage.settings import ClassifierSettings, LLMSettings, WorkerSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()

    max_body = WorkerSettings().max_body_bytes
    todo = [parse_message(value, max_body) for _, value in messages(args.messages, 200)]
    cpu_s: list[float] = []
    lock = threading.Lock()

    with FakeOpenAI() as llm:
        llm.responder = lambda _request: (time.sleep(args.latency_ms / 1000), DEFAULT_ANSWER)[1]
        classifier = LLMClassifier(
            LLMSettings(base_url=llm.base_url, api_key="benchmark", model="stand-in"),
            load_categories(ClassifierSettings()),
        )

        def classify_some() -> None:
            started = time.thread_time()
            while True:
                with lock:
                    if not todo:
                        break
                    message = todo.pop()
                classifier.classify(message)
            with lock:
                cpu_s.append(time.thread_time() - started)

        threads = [threading.Thread(target=classify_some) for _ in range(args.threads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started

    per_call_ms = 1000 * sum(cpu_s) / args.messages
    print(
        f"{args.threads} threads, stand-in at {args.latency_ms:.0f} ms: {args.messages / seconds:.0f} "
        f"classifications/s, {per_call_ms:.2f} ms CPU per classification in the calling threads; "
        f"one process can do at most {1000 / per_call_ms:.0f} msgs/s on the LLM call alone"
    )


if __name__ == "__main__":
    main()
