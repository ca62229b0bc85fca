"""The cascade on a labelled file: how many messages it sends to the LLM, what that costs, its CPU.

    python benchmarks/cascade.py threshold data/support_examples.csv   # choose TRIAGE_CASCADE__ASK_BELOW
    python benchmarks/cascade.py category data/support_examples.csv    # choose ..._CATEGORY_BELOW
    python benchmarks/cascade.py compare data/support_examples.csv     # embedded, cascade, llm side by side

`threshold`: out-of-fold urgency confidences (5 folds grouped by scenario, the CSV's `group`: a head
trained with `triage train`'s method on four fifths scores the fifth it did not see, and no message is
scored by a head that saw it or its translations), then, for each
candidate threshold, the share of messages the cascade would send to the LLM (called high/urgent, or
less confident than the threshold) and how many of the embedded model's out-of-fold mistakes are among
them. The default is the largest threshold whose share stays within BUDGET_POINTS of the flagged share.

`compare`: `triage eval --compare embedded,cascade,llm` against the LLM stand-in (tests/fakes), run in
a child process so that its CPU is not counted. The stand-in answers with each message's own labels
(an oracle: an upper bound of what an LLM adds, not a measure of any real LLM), counts about 4
characters a token and caches prompt prefixes as OpenAI documents; prices are gpt-4o-mini's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET_POINTS = 0.10  # we aim for at most 15 points above the flagged share; 5 kept for unseen data
MODEL = "gpt-4o-mini"


def serve(csv_file: Path) -> None:
    """The stand-in, answering each fenced message with its own labels, until stdin closes."""
    import csv

    from tests.fakes.openai_server import FakeOpenAI
    from triage.classify.llm import fence
    from triage.message import SupportMessage

    with csv_file.open(encoding="utf-8", newline="") as handle:
        rows = {
            fence(SupportMessage(id="x", body=row["text"], subject=row.get("subject") or None)): row
            for row in csv.DictReader(handle)
        }

    def respond(request: dict) -> dict:
        user = request["messages"][-1]["content"]
        row = rows.get(user[user.rfind("<customer_message") :], {})
        return {
            "urgency": row.get("urgency", "normal"),
            "sentiment": row.get("sentiment", "neutral"),
            "category": row.get("category", "other"),
            "language": row.get("lang", "en"),
            "summary": "What the customer needs, in one line.",
            "confidence": 0.9,
        }

    with FakeOpenAI() as llm:
        llm.responder = respond
        llm.count_tokens = lambda text: max(1, len(text) // 4)
        llm.prompt_cache = True
        print(llm.base_url, flush=True)
        sys.stdin.read()


def threshold(csv_file: Path) -> None:
    import csv

    from sklearn.model_selection import StratifiedGroupKFold

    from triage.classify.embedded import Encoder, message_text
    from triage.classify.evaluate import read_examples
    from triage.classify.train import train

    examples = read_examples(csv_file, "urgency").examples
    with csv_file.open(encoding="utf-8", newline="") as handle:
        groups = [row["group"] for row in csv.DictReader(handle) if row["text"].strip()]
    target = np.array([example.label == "urgent" for example in examples])
    encoder = Encoder()
    embeddings = encoder.encode([message_text(example.as_message()) for example in examples])
    confidence, flagged = np.zeros(len(examples)), np.zeros(len(examples), bool)
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    for train_idx, test_idx in folds.split(embeddings, target, groups):
        head = train(encoder, [examples[i] for i in train_idx], "urgency").head
        p = head.probabilities(embeddings[test_idx])[:, 1]
        flagged[test_idx] = p >= head.threshold
        confidence[test_idx] = np.where(flagged[test_idx], p, 1 - p)
    wrong = flagged != target
    missed = ~flagged & target  # urgent messages the embedded model calls normal: only the LLM can save them
    print(
        f"{len(examples)} messages, out of fold: flagged {flagged.mean():.1%}, wrong {wrong.sum()}, "
        f"urgent called normal {missed.sum()}"
    )
    print("ask_below  sent to LLM  above flagged  missed urgent caught  mistakes among sent")
    chosen = 0.0
    for t in np.round(np.arange(0.50, 1.0001, 0.025), 3):
        sent = flagged | (confidence < t)
        extra = sent.mean() - flagged.mean()
        if extra <= BUDGET_POINTS:
            chosen = float(t)
        print(
            f"{t:9.3f}  {sent.mean():10.1%}  {extra * 100:12.1f} pt  "
            f"{(sent & missed).sum():>9d} of {missed.sum()}  {(sent & wrong).sum():>10d} of {wrong.sum()}"
        )
    print(f"chosen: {chosen} (the largest within {BUDGET_POINTS * 100:.0f} points of the flagged share)")


def category(csv_file: Path, routed: set[str]) -> None:
    """The category head is fitted on the categories file, not on these messages: each message is
    unseen. For each threshold, the share whose category probability is below it (asked, in the worst
    case where the routing file matches on every category) and the category mistakes among them; then
    the share asked for its category alone (not flagged, not unsure) when the routing file matches on
    `routed`."""
    from triage.classify.cascade import AskRule
    from triage.classify.embedded import EmbeddedClassifier
    from triage.classify.evaluate import read_examples
    from triage.settings import CascadeSettings, ClassifierSettings

    examples = read_examples(csv_file, "category").examples
    model = EmbeddedClassifier.load(ClassifierSettings())
    assessed = [model.assess(example.as_message(i)) for i, example in enumerate(examples)]
    p = np.array([a.category_probability for a in assessed])
    wrong = np.array([a.triage.category != e.label for a, e in zip(assessed, examples, strict=True)])
    print(f"{len(examples)} messages, category mistakes {wrong.sum()} ({wrong.mean():.1%})")
    rule = AskRule.from_settings(CascadeSettings(), frozenset(routed))
    other = np.array([rule.reason(a) in ("flagged", "unsure") for a in assessed])
    touches = np.array([bool({a.triage.category, a.runner_up} & routed) for a in assessed])
    names = ", ".join(sorted(routed))
    print(f"category_below  below it  mistakes among them  asked for the category alone ({names})")
    for t in (0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25, 0.3, 0.4):
        below = p < t
        alone = below & touches & ~other
        print(
            f"{t:14.3f}  {below.mean():8.1%}  {(below & wrong).sum():>9d} of {wrong.sum()}"
            f"  {alone.mean():>10.1%} ({(alone & wrong).sum()} of them wrong)"
        )


def compare(csv_file: Path, backends: str) -> None:
    child = subprocess.Popen(
        [sys.executable, __file__, "serve", str(csv_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        base_url = child.stdout.readline().strip()
        env = {
            **os.environ,
            "TRIAGE_LLM__BASE_URL": base_url,
            "TRIAGE_LLM__API_KEY": "benchmark",
            "TRIAGE_LLM__MODEL": MODEL,
        }
        command = [sys.executable, "-m", "triage", "eval", "--compare", backends, str(csv_file), "--json"]
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    finally:
        child.stdin.close()
        child.wait(timeout=30)
    reports = json.loads(done.stdout)
    keys = (
        "accuracy",
        "macro_f1",
        "flagged_share",
        "llm_share",
        "cost_usd_per_1000",
        "cpu_s_per_1000",
        "messages_per_s",
        "prompt_tokens",
    )
    print(f"{'':22}" + "".join(f"{r['backend']:>12}" for r in reports))
    for key in keys:
        print(f"{key:22}" + "".join(f"{r[key]:>12}" for r in reports))
    for report in reports:
        urgent = report["per_class"].get("urgent", {})
        print(
            f"{report['backend']}: urgent recall {urgent.get('recall')}, precision {urgent.get('precision')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["threshold", "category", "compare", "serve"])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--backends", default="embedded,cascade,llm")
    parser.add_argument("--routed", default="billing,security,cancellation", help="for `category`")
    args = parser.parse_args()
    if args.what == "serve":
        serve(args.csv)
    elif args.what == "threshold":
        threshold(args.csv)
    elif args.what == "category":
        category(args.csv, set(args.routed.split(",")))
    else:
        compare(args.csv, args.backends)


if __name__ == "__main__":
    main()
