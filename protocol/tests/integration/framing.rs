//! The framing rules of docs/protocol.md §2.2, as the codec keeps them: what counts
//! toward the line limit, and when an over-long line is answered.

use bytes::BytesMut;
use outpost_protocol::{ErrorCode, Frame, LineProblem, Message, NdjsonCodec};
use serde_json::json;
use tokio_util::codec::Decoder;

const LIMIT: usize = 64;

/// A ping padded to exactly `size` bytes.
fn ping(id: &str, size: usize) -> String {
    let base =
        json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"p": ""}}).to_string();
    let line = json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"p": "x".repeat(size - base.len())}})
        .to_string();
    assert_eq!(line.len(), size);
    line
}

fn is_ping(frame: Option<Frame>, id: &str) -> bool {
    matches!(frame, Some(Frame::Message(Message::Request(r))) if r.id == id.into())
}

fn too_long(frame: Option<Frame>) -> (u64, usize) {
    match frame {
        Some(Frame::Invalid(invalid)) => match invalid.problem {
            LineProblem::TooLong { limit, seen } => {
                assert_eq!(limit, LIMIT);
                (invalid.line, seen)
            }
            other => panic!("expected a line over the limit, got {other:?}"),
        },
        other => panic!("expected a line over the limit, got {other:?}"),
    }
}

/// §2.2: the limit counts the message, not its `\r`, its byte-order mark or its `\n`.
#[test]
fn a_line_of_the_limit_is_read_with_its_crlf_and_byte_order_mark() {
    let mut codec = NdjsonCodec::new(LIMIT);
    let line = ping("a", LIMIT);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(b"\xEF\xBB\xBF");
    buf.extend_from_slice(line.as_bytes());
    buf.extend_from_slice(b"\r\n");
    assert!(is_ping(codec.decode(&mut buf).unwrap(), "a"));
    // One byte more is over.
    buf.extend_from_slice(ping("b", LIMIT + 1).as_bytes());
    buf.extend_from_slice(b"\r\n");
    assert_eq!(too_long(codec.decode(&mut buf).unwrap()), (2, LIMIT + 1));
}

/// §2.2: an over-long line is answered at its newline at the latest, and as soon as more
/// than `limit + 4` bytes of it have arrived without one; then it is discarded up to its
/// newline, never answered twice, and the next line is read.
#[test]
fn an_over_long_line_is_refused_once_before_its_newline_when_it_cannot_fit() {
    let mut codec = NdjsonCodec::new(LIMIT);
    let mut buf = BytesMut::new();
    // limit + 4 bytes could still be a line of the limit behind a BOM and before `\r`.
    buf.extend_from_slice(&[b'x'; LIMIT + 4]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"x");
    assert_eq!(too_long(codec.decode(&mut buf).unwrap()), (1, LIMIT + 5));
    // The rest of the line streams by unanswered and unbuffered.
    for _ in 0..100 {
        buf.extend_from_slice(&[b'y'; 1000]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }
    buf.extend_from_slice(b"yyy\n");
    buf.extend_from_slice(ping("next", LIMIT).as_bytes());
    buf.extend_from_slice(b"\n");
    assert!(is_ping(codec.decode(&mut buf).unwrap(), "next"));

    // A line one byte over, whole in one read: answered at its newline.
    let mut codec = NdjsonCodec::new(LIMIT);
    let mut buf = BytesMut::from(&[b'z'; LIMIT + 1][..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"\n");
    assert_eq!(too_long(codec.decode(&mut buf).unwrap()), (1, LIMIT + 1));
}

/// §2.2: the answer is `-32006` with `id: null` and `data: {limit, size}`, `size` the
/// bytes seen.
#[test]
fn the_answer_to_an_over_long_line_is_minus_32006_with_limit_and_size() {
    let mut codec = NdjsonCodec::new(LIMIT);
    let mut buf = BytesMut::from(&[b'x'; 200][..]);
    let Some(Frame::Invalid(invalid)) = codec.decode(&mut buf).unwrap() else {
        panic!("a line over the limit");
    };
    let response = invalid.to_response();
    assert_eq!(response.id, None);
    let error = response.outcome.unwrap_err();
    assert_eq!(error.code, ErrorCode::MessageTooLarge);
    assert_eq!(error.data, Some(json!({"limit": LIMIT, "size": 200})));
}
