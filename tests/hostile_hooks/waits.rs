//! The hostile agent's `TaskDumps` (`Info`, `Capture`), answered with bytes
//! written by hand: a flood of 50 000 traces of 500 frames is 50 MB on the
//! wire and would be 1.4 GB as prost structs in the test process.

use super::agent::{Agent, EVIL, HONEST, WaitsLie, unix_ns};
use prost::Message;
use std::sync::Arc;
use std::time::SystemTime;
use taskscope_proto::{self as proto, Loc};
use tonic::{Request, Response, Status};

/// `TaskDumps`, answered with bytes written by hand.
#[derive(Clone)]
pub(super) struct Dumps(pub(super) Arc<Agent>);

impl tonic::server::NamedService for Dumps {
    const NAME: &'static str = taskscope_proto::SERVICE;
}

/// A codec that sends the bytes it is given as the message.
struct Raw;

struct RawEncoder;
struct AnyDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = bytes::Bytes;
    type Error = Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for AnyDecoder {
    type Item = ();
    type Error = Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, Status> {
        let n = bytes::Buf::remaining(src);
        bytes::Buf::advance(src, n);
        Ok(Some(()))
    }
}

impl tonic::codec::Codec for Raw {
    type Encode = bytes::Bytes;
    type Decode = ();
    type Encoder = RawEncoder;
    type Decoder = AnyDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> AnyDecoder {
        AnyDecoder
    }
}

struct Reply(Arc<Agent>, bool);

impl tonic::server::UnaryService<()> for Reply {
    type Response = bytes::Bytes;
    type Future = tonic::codegen::BoxFuture<Response<bytes::Bytes>, Status>;

    fn call(&mut self, _: Request<()>) -> Self::Future {
        let (agent, info) = (self.0.clone(), self.1);
        Box::pin(async move {
            if info {
                return Ok(Response::new(info_reply().into()));
            }
            match agent.lies.captures {
                WaitsLie::Never => std::future::pending().await,
                WaitsLie::Small => Ok(Response::new(small_captures().into())),
                WaitsLie::Flood { traces, frames } => {
                    let body = tokio::task::spawn_blocking(move || flood(traces, frames))
                        .await
                        .map_err(|e| Status::internal(e.to_string()))?;
                    Ok(Response::new(body.into()))
                }
            }
        })
    }
}

/// An older agent's Info: with 1 000 windows of whole-runtime dumps (tag
/// 5, reserved now) at impossible times.
fn info_reply() -> Vec<u8> {
    let mut out = proto::InfoReply {
        agent_version: format!("0.1.0{EVIL}"),
        dumps_supported: true,
        why_not: String::new(),
        min_interval_ms: 0,
        holds_wakers: false,
    }
    .encode_to_vec();
    let window = older_dump_window(i64::MAX, i64::MIN);
    for _ in 0..1_000 {
        prost::encoding::bytes::encode(5, &window, &mut out);
    }
    out
}

/// An older agent's `DumpWindow` (start and end, ns since the epoch).
fn older_dump_window(start: i64, end: i64) -> Vec<u8> {
    let mut w = Vec::new();
    prost::encoding::int64::encode(1, &start, &mut w);
    prost::encoding::int64::encode(2, &end, &mut w);
    w
}

fn small_captures() -> Vec<u8> {
    let now = unix_ns(SystemTime::now());
    proto::DumpReply {
        traces: vec![proto::Trace {
            leaves: vec![proto::Leaf {
                frames: vec![proto::Frame {
                    name: "tokio::net::tcp::stream::TcpStream::read".into(),
                    file: "tokio-1.54.1/src/net/tcp/stream.rs".into(),
                    line: 1,
                }],
            }],
        }],
        tasks: vec![proto::TaskTrace {
            id: 1,
            trace: 0,
            location: 1,
            captured_unix_ns: now,
            // A spawner no location list holds.
            spawner: u32::MAX,
            split: true,
        }],
        taken_unix_ns: now,
        locations: vec![Loc {
            file: HONEST.0.into(),
            line: HONEST.1,
            column: HONEST.2,
        }],
        ..proto::DumpReply::default()
    }
    .encode_to_vec()
}

/// `traces` copies of a trace of `frames` empty frames, then one task per
/// trace pointing past the traces and the (absent) locations.
fn flood(traces: usize, frames: usize) -> Vec<u8> {
    let trace = proto::Trace {
        leaves: vec![proto::Leaf {
            frames: vec![proto::Frame::default(); frames],
        }],
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(traces * (trace.len() + 4) + traces * 16 + 64);
    for _ in 0..traces {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(trace.len() as u64, &mut out);
        out.extend_from_slice(&trace);
    }
    for i in 0..traces as u64 {
        let t = proto::TaskTrace {
            id: i + 1,
            trace: u32::MAX - i as u32,
            location: u32::MAX,
            captured_unix_ns: i64::MAX,
            spawner: u32::MAX,
            split: true,
        };
        prost::encoding::message::encode(2, &t, &mut out);
    }
    prost::encoding::int64::encode(5, &unix_ns(SystemTime::now()), &mut out);
    prost::encoding::uint64::encode(3, &u64::MAX, &mut out);
    out
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for Dumps {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        let agent = self.0.clone();
        Box::pin(async move {
            let info = req.uri().path() == taskscope_proto::INFO_PATH;
            let mut grpc = tonic::server::Grpc::new(Raw).max_encoding_message_size(usize::MAX);
            Ok(grpc.unary(Reply(agent, info), req).await)
        })
    }
}
