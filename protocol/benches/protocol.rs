//! Codec and peer benchmarks: `cargo bench -p outpost-protocol --bench protocol`.
//!
//! - `codec/decode` and `codec/encode`: a typical `tool/invoke` request (~330 bytes);
//! - `peer/round_trip`: one request answered by an echo handler over an in-memory
//!   duplex, sequentially (latency);
//! - `peer/in_flight_64`: 64 requests in flight at once (throughput).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use outpost_protocol::peer::{self, CallOptions, Event, PeerConfig};
use outpost_protocol::{Frame, Message, NdjsonCodec, Request};
use serde_json::json;
use tokio_util::codec::{Decoder, Encoder};

fn sample() -> Message {
    Message::Request(Request::new(
        7,
        "tool/invoke",
        Some(json!({
            "name": "word_count",
            "arguments": {"text": "the quick brown fox jumps over the lazy dog, again and again"},
            "context": {"sessionKey": "agent:main:telegram:42", "agentId": "main", "channel": "telegram",
                        "senderId": "user-1234", "isAuthorizedSender": true, "timeoutMs": 30000}
        })),
    ))
}

fn codec(c: &mut Criterion) {
    let message = sample();
    let line = format!("{}\n", message.to_json());
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("decode", |b| {
        let mut codec = NdjsonCodec::new(outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES);
        b.iter_batched(
            || BytesMut::from(line.as_bytes()),
            |mut buf| {
                let frame = codec.decode(&mut buf).unwrap();
                assert!(matches!(frame, Some(Frame::Message(_))));
                black_box(frame)
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("encode", |b| {
        let mut codec = NdjsonCodec::new(outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES);
        let mut buf = BytesMut::with_capacity(1024);
        b.iter(|| {
            buf.clear();
            codec.encode(black_box(&message), &mut buf).unwrap();
        });
    });
    group.finish();
}

/// Answers every request with its params.
fn spawn_echo(mut incoming: peer::Incoming) {
    tokio::spawn(async move {
        while let Some(event) = incoming.next().await {
            if let Event::Request(request) = event {
                let params = request.params.unwrap_or_default();
                let _ = request.responder.ok(params).await;
            }
        }
    });
}

fn peer_round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (client, _client_incoming) = runtime.block_on(async {
        let ((client, client_incoming), (_server, server_incoming)) =
            peer::memory_pair(&PeerConfig::default());
        spawn_echo(server_incoming);
        (client, client_incoming)
    });
    let params = json!({"name": "word_count", "arguments": {"text": "hello"}});
    let mut group = c.benchmark_group("peer");
    group.bench_function("round_trip", |b| {
        b.to_async(&runtime).iter(|| async {
            client
                .call("tool/invoke", Some(&params), CallOptions::default())
                .await
                .unwrap()
        });
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("in_flight_64", |b| {
        b.to_async(&runtime).iter(|| async {
            let calls =
                (0..64).map(|_| client.call("tool/invoke", Some(&params), CallOptions::default()));
            for result in futures_util::future::join_all(calls).await {
                result.unwrap();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, codec, peer_round_trip);
criterion_main!(benches);
