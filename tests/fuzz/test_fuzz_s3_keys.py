"""Fuzz: S3 object keys as S3 events carry them (``dagtrigger.sources.s3.parse``).

Classic notifications URL-encode the key form style (space -> ``+``, ``+`` -> ``%2B``);
EventBridge sends it as is (see the parse module's docstring for the evidence). The properties:

* any key S3 can hold (any Unicode text of at most 1,024 UTF-8 bytes), encoded as S3 encodes it,
  decodes to exactly that key, in both formats, and the two formats name the same object;
* a key longer than S3 allows, and any wire key that is not a well-formed encoding (a bare
  ``%``, escapes that do not spell UTF-8, a lone surrogate), is refused with a
  ``MalformedEventError`` that names the field; nothing else is ever raised.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrigger.sources.s3.parse import (
    MAX_KEY_BYTES,
    MalformedEventError,
    ParsedS3Message,
    decode_notification_key,
    parse_sqs_body,
)

#: characters S3 may leave unencoded; quote_plus always leaves letters, digits and "_.-~" alone
SAFE_SETS = st.sampled_from(["", "/", "/!'()*", "/$&,:;=@"])
HOSTILE_CHARS = st.sampled_from(list("+% /\\'\"\n\t\x00\x7f#?&=~*é✓🚀\u200b\ufeff"))
KEY_TEXT = st.one_of(
    st.text(min_size=1),
    st.text(alphabet=HOSTILE_CHARS, min_size=1),
    st.sampled_from(["c++ notes%20v2.csv", "a+b.csv", "100%.csv", "%2B", "+", " ", "%"]),
)
S3_KEYS = KEY_TEXT.filter(lambda key: len(key.encode("utf-8")) <= MAX_KEY_BYTES)
#: the longest keys: any short text repeated up to S3's 1,024 bytes (exactly, for 1- to 4-byte
#: characters alone)
LONGEST_KEYS = st.one_of(st.sampled_from(["k", "é", "✓", "🚀"]), KEY_TEXT).map(
    lambda piece: piece * max(1, MAX_KEY_BYTES // len(piece.encode("utf-8")))
)


def notification_body(wire_key: str) -> str:
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-21T10:15:00.123Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "landing"},
            "object": {"key": wire_key, "size": 5, "sequencer": "0055AED6DCD90281E5"},
        },
    }
    return json.dumps({"Records": [record]})


def eventbridge_body(key: str) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "time": "2026-11-21T10:15:00Z",
            "region": "us-east-1",
            "detail": {
                "bucket": {"name": "landing"},
                "object": {"key": key, "size": 5, "sequencer": "617f08299329d189"},
                "reason": "PutObject",
            },
        }
    )


def parsed_or_refused(body: str) -> ParsedS3Message | MalformedEventError:
    """What parsing ``body`` gives: the message, or the refusal (any other error propagates)."""
    try:
        return parse_sqs_body(body)
    except MalformedEventError as refused:
        return refused


def refusal(body: str) -> str:
    with pytest.raises(MalformedEventError) as raised:
        parse_sqs_body(body)
    assert raised.value.code == "malformed_event"
    return raised.value.message


@given(
    key=st.one_of(S3_KEYS, LONGEST_KEYS.filter(lambda key: len(key.encode()) <= MAX_KEY_BYTES)),
    safe=SAFE_SETS,
)
def test_a_key_encoded_as_s3_encodes_it_decodes_to_itself_in_both_formats(
    key: str, safe: str
) -> None:
    # Given any key S3 can hold, on the wire of each format
    wire_key = quote_plus(key, safe=safe)

    # When each message is parsed
    (from_notification,) = parse_sqs_body(notification_body(wire_key)).events
    (from_eventbridge,) = parse_sqs_body(eventbridge_body(key)).events

    # Then both give back exactly the key, so both name (and dedupe) the same object
    assert from_notification.key == key
    assert from_eventbridge.key == key
    assert from_notification.source_key == from_eventbridge.source_key == f"s3://landing/{key}"
    assert decode_notification_key(wire_key, "key") == key


@given(key=KEY_TEXT, padding=st.integers(min_value=1, max_value=2048))
def test_a_key_longer_than_s3_allows_is_refused_with_the_limit(key: str, padding: int) -> None:
    # Given a key over 1,024 bytes of UTF-8
    long_key = key + "x" * max(padding, MAX_KEY_BYTES + 1 - len(key.encode("utf-8")))
    size = len(long_key.encode("utf-8"))
    assert size > MAX_KEY_BYTES

    # When it arrives in either format, then it is refused with its size and the limit
    for body, where in (
        (notification_body(quote_plus(long_key)), "S3 notification Records[0].s3.object.key"),
        (eventbridge_body(long_key), "EventBridge event detail.object.key"),
    ):
        assert refusal(body) == (
            f"{where} is {size} bytes of UTF-8; S3 keys are at most {MAX_KEY_BYTES} bytes"
        )


@st.composite
def wire_tokens(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """A wire key built from tokens, with what it should decode to: ``(wire, bytes, bare)``.

    Tokens are escapes of any byte (either hex case), plain characters, ``+`` for a space, and
    bare ``%`` signs (followed by a character that is not hex, or ending the key) that S3,
    which always encodes ``%`` as ``%25``, never sends.
    """
    wire, raw, bare = [], bytearray(), False
    for kind in draw(st.lists(st.sampled_from(["byte", "char", "space", "bare"]), min_size=1)):
        if kind == "byte":
            byte = draw(st.integers(min_value=0, max_value=255))
            wire.append(draw(st.sampled_from([f"%{byte:02X}", f"%{byte:02x}"])))
            raw.append(byte)
        elif kind == "char":
            char = draw(st.sampled_from("azAZ09_.-~/"))
            wire.append(char)
            raw += char.encode()
        elif kind == "space":
            wire.append("+")
            raw += b" "
        else:
            wire.append("%" + draw(st.sampled_from(["g", "Z", "-", "/", "%"])))
            bare = True
    if draw(st.booleans()):
        wire.append("%")
        bare = True
    return "".join(wire), bytes(raw), bare


@given(token_key=wire_tokens())
def test_a_wire_key_decodes_to_the_utf8_its_escapes_spell_or_is_refused(
    token_key: tuple[str, bytes, bool],
) -> None:
    # Given a wire key and the bytes its escapes spell (most byte strings are not UTF-8)
    wire_key, raw, has_bare_percent = token_key
    try:
        expected: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        expected = None

    # When it is parsed
    outcome = parsed_or_refused(notification_body(wire_key))

    # Then it is exactly the text those bytes spell, or a refusal that says what is wrong
    if has_bare_percent:
        assert isinstance(outcome, MalformedEventError)
        assert "does not start a %XX escape" in outcome.message
    elif expected is None:
        assert isinstance(outcome, MalformedEventError)
        assert outcome.message.endswith("does not URL-decode to UTF-8")
    else:
        assert isinstance(outcome, ParsedS3Message)
        assert [event.key for event in outcome.events] == [expected]
    if isinstance(outcome, MalformedEventError):
        assert outcome.message.startswith("S3 notification Records[0].s3.object.key ")


LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
WIRE_NOISE = st.one_of(
    st.lists(st.characters() | LONE_SURROGATES, min_size=1).map("".join),
    st.text(alphabet=st.sampled_from(list("%+0123456789abcdefABCDEFgz/é\ud800")), min_size=1),
)


@given(wire_key=WIRE_NOISE, in_eventbridge=st.booleans())
def test_any_wire_key_is_a_key_or_a_refusal_naming_the_field(
    wire_key: str, in_eventbridge: bool
) -> None:
    # Given any text at all where the key goes
    body = eventbridge_body(wire_key) if in_eventbridge else notification_body(wire_key)

    # When it is parsed, then nothing but a MalformedEventError is ever raised ...
    outcome = parsed_or_refused(body)

    # ... and a refusal names the field it is about
    if isinstance(outcome, MalformedEventError):
        assert outcome.code == "malformed_event"
        assert "object.key" in outcome.message
        return
    (event,) = outcome.events

    # And a key that is accepted is one S3 can hold, which encodes and decodes back to itself
    assert 0 < len(event.key.encode("utf-8")) <= MAX_KEY_BYTES
    if in_eventbridge:
        # as JSON carries it: an escaped surrogate pair reads back as the one character it spells
        assert event.key == json.loads(json.dumps(wire_key))
    (again,) = parse_sqs_body(notification_body(quote_plus(event.key))).events
    assert again.key == event.key


def _documents() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=10), children, max_size=3)
        ),
        max_leaves=10,
    )


@st.composite
def mangled_messages(draw: st.DrawFn) -> str:
    """A real-shaped message with one field replaced by any JSON value, or dropped."""
    key = draw(KEY_TEXT)
    document = json.loads(
        draw(st.sampled_from([notification_body(quote_plus(key)), eventbridge_body(key)]))
    )
    holders = [document]
    if "Records" in document:
        record = document["Records"][0]
        holders += [record, record["s3"], record["s3"]["bucket"], record["s3"]["object"]]
    else:
        detail = document["detail"]
        holders += [detail, detail["bucket"], detail["object"]]
    holder = draw(st.sampled_from(holders))
    field = draw(st.sampled_from(sorted(holder)))
    if draw(st.booleans()):
        del holder[field]
    else:
        holder[field] = draw(_documents())
    return json.dumps(document)


@given(body=mangled_messages())
def test_a_mangled_message_is_parsed_or_refused_never_crashes(body: str) -> None:
    outcome = parsed_or_refused(body)

    if isinstance(outcome, MalformedEventError):
        assert outcome.message
        return
    for event in [*outcome.events, *outcome.others]:
        assert 0 < len(event.key.encode("utf-8")) <= MAX_KEY_BYTES
        assert event.source_key == f"s3://{event.bucket}/{event.key}"
