//! The agent's four calls (`Tasks.Watch`, `Tasks.Page`, `TaskDumps.Info`,
//! `TaskDumps.Capture`), made with the capped decoders of `capped.rs` instead
//! of the generated clients (which decode with prost, whole): each reply is
//! at most `limit` bytes on the wire and at most the caps in memory.

use super::capped::{self, Codec, Decoded};
use super::chan::Chan;
use taskscope_proto as proto;
use tonic::codegen::http::uri::PathAndQuery;

async fn ready(channel: Chan, limit: usize) -> Result<tonic::client::Grpc<Chan>, tonic::Status> {
    let channel = channel
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(limit);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("the target is not ready: {e}")))?;
    Ok(grpc)
}

/// `Tasks.Watch`: the groups, streamed.
pub async fn watch(
    channel: Chan,
    limit: usize,
) -> Result<tonic::Streaming<Decoded<proto::Groups>>, tonic::Status> {
    let mut grpc = ready(channel, limit).await?;
    grpc.server_streaming(
        tonic::Request::new(proto::WatchRequest {}),
        PathAndQuery::from_static(proto::WATCH_PATH),
        Codec::new(capped::groups),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// `Tasks.Page`: a group's tasks.
pub async fn page(
    channel: Chan,
    limit: usize,
    req: proto::PageRequest,
) -> Result<Decoded<proto::TaskPage>, tonic::Status> {
    let mut grpc = ready(channel, limit).await?;
    grpc.unary(
        tonic::Request::new(req),
        PathAndQuery::from_static(proto::PAGE_PATH),
        Codec::new(capped::page),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// `TaskDumps.Info`: whether the target has an agent, and what it can do.
pub async fn info(channel: Chan, limit: usize) -> Result<Decoded<proto::InfoReply>, tonic::Status> {
    let mut grpc = ready(channel, limit).await?;
    grpc.unary(
        tonic::Request::new(proto::InfoRequest {}),
        PathAndQuery::from_static(proto::INFO_PATH),
        Codec::new(capped::info),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// `TaskDumps.Capture`: the tasks' waits.
pub async fn captures(
    channel: Chan,
    limit: usize,
    req: proto::DumpRequest,
) -> Result<Decoded<proto::DumpReply>, tonic::Status> {
    let mut grpc = ready(channel, limit).await?;
    grpc.unary(
        tonic::Request::new(req),
        PathAndQuery::from_static(proto::DUMP_PATH),
        Codec::new(capped::captures),
    )
    .await
    .map(tonic::Response::into_inner)
}
