from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from triage.kafka import OffsetTracker, dead_letter_headers

TP = TopicPartition("t", 0)


def test_commit_stops_below_the_lowest_unfinished_offset():
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        tracker.started(TP, offset)
    tracker.finished(TP, 10)
    tracker.finished(TP, 12)
    tracker.finished(TP, 13)
    assert tracker.committable() == {TP: 11}  # 11 is unfinished: nothing past it
    tracker.finished(TP, 11)
    assert tracker.committable() == {TP: 14}


def test_offset_gaps_do_not_block_commits():
    tracker = OffsetTracker()
    for offset in (5, 9):  # 6-8 are compacted away or transaction markers
        tracker.started(TP, offset)
        tracker.finished(TP, offset)
    assert tracker.committable() == {TP: 10}


def test_committed_offsets_are_not_offered_again_and_rewind_forgets_later_work():
    tracker = OffsetTracker()
    tracker.started(TP, 0)
    tracker.finished(TP, 0)
    tracker.committed(tracker.committable())
    assert tracker.committable() == {}
    tracker.started(TP, 1)
    tracker.started(TP, 2)
    tracker.finished(TP, 2)
    tracker.rewind(TP, 1)  # 1 failed transiently: 1 and 2 will be fetched again
    assert tracker.committable() == {}
    tracker.forget([TP])
    assert tracker.committable() == {}


def test_dead_letter_headers_carry_reason_origin_and_original_headers():
    fields = dict.fromkeys(ConsumerRecord._fields) | {
        "topic": "in",
        "partition": 2,
        "offset": 41,
        "key": b"k",
        "value": b"v",
        "headers": [("trace", b"abc")],
    }
    record = ConsumerRecord(**fields)
    headers = dict(dead_letter_headers(record, "invalid_json", "Expecting value at line 1 column 1"))
    assert headers["triage.error"] == b"invalid_json: Expecting value at line 1 column 1"
    assert headers["triage.error.code"] == b"invalid_json"
    assert (
        headers["triage.original.topic"],
        headers["triage.original.partition"],
        headers["triage.original.offset"],
    ) == (b"in", b"2", b"41")
    assert headers["trace"] == b"abc"
    assert headers["triage.failed_at"].startswith(b"20")
