"""What a conversation carries from one turn to the next (assistant/conversation.py)."""

from pathlib import Path

from assistant.conversation import borrowed_question, follow_up_question, merge_sources, trim_exchange
from assistant.types import Source
from tools.site import load_site_profile

SITE = load_site_profile(Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "site-profile.toml")


def doc(n: int, chunk: str) -> Source:
    return Source(n, "document", f"title {chunk}", f"text of {chunk}", chunk_id=chunk)


def test_a_passage_shown_before_keeps_its_number_and_new_sources_follow():
    prior = [doc(1, "a"), doc(2, "b")]
    new = [doc(1, "b"), doc(2, "c"), Source(3, "tool", "sensor_latest(target=GH-2)", "GH-2 ok")]
    merged, fresh = merge_sources(prior, new)
    assert [(s.n, s.chunk_id or s.tool) for s in merged] == [(1, "a"), (2, "b"), (3, "c"), (4, None)]
    assert [s.n for s in fresh] == [3, 4] and merged[3].kind == "tool"


def test_the_oldest_exchange_is_dropped_first_when_the_conversation_grows():
    pair = lambda q: [{"role": "user", "content": q * 400}, {"role": "assistant", "content": "ok"}]  # noqa: E731
    exchange = pair("a") + pair("b") + pair("c")
    kept = trim_exchange(exchange, max_tokens=250)
    assert [m["content"][0] for m in kept if m["role"] == "user"] == ["b", "c"]
    assert trim_exchange(exchange, max_tokens=10) == []


def test_a_follow_up_keeps_the_place_and_a_short_one_borrows_the_question_for_search():
    earlier = ["温室2号现在温度正常吗？"]
    assert follow_up_question("那湿度呢？", earlier, SITE).startswith("GH-2")
    assert borrowed_question("那湿度呢？", "GH-2 那湿度呢？", earlier[0]) == ""  # the place is enough
    previous = "How often should the pump bearings be lubricated?"
    assert borrowed_question("Why is that?", "Why is that?", previous) == previous
    long_one = "And what grease should I use for the motor bearings of the irrigation pump?"
    assert borrowed_question(long_one, long_one, previous) == ""  # a full question stands on its own
