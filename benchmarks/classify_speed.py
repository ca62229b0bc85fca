"""Per-message speed of the embedded backend, one message at a time as the worker calls it.

    python benchmarks/classify_speed.py [--messages 200] [--csv data/support_examples.csv]

Prints the start-up time (encoder, heads, the category head fitted on the categories file), then
messages/s and the process's CPU milliseconds per message (all threads, so the encoder's OpenMP
threads count too).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from triage.classify.embedded import EmbeddedClassifier  # noqa: E402
from triage.message import SupportMessage  # noqa: E402
from triage.settings import ClassifierSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--csv", type=Path, default=REPO / "data" / "support_examples.csv")
    args = parser.parse_args()
    rows = list(csv.DictReader(args.csv.open(encoding="utf-8")))
    messages = [
        SupportMessage(id=str(i), body=row["text"], subject=row.get("subject") or None)
        for i, row in enumerate((rows * (args.messages // len(rows) + 1))[: args.messages])
    ]
    wall, cpu = time.perf_counter(), time.process_time()
    classifier = EmbeddedClassifier.load(ClassifierSettings())
    print(f"start-up: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    classifier.classify(messages[0])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for message in messages:
        classifier.classify(message)
    elapsed, used = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{len(messages)} messages: {len(messages) / elapsed:.1f} messages/s, "
        f"{1000 * used / len(messages):.1f} ms CPU per message"
    )


if __name__ == "__main__":
    main()
