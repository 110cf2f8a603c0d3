//! The agent's services as the generated clients see them, on a real
//! runtime over real gRPC: what each method answers, the status codes of
//! its refusals, and `UNIMPLEMENTED` for a method the contract does not
//! have (a newer viewer asking an older agent).

use std::time::Duration;
use taskscope_agent::Agent;
use taskscope_agent::proto::task_dumps_client::TaskDumpsClient;
use taskscope_agent::proto::tasks_client::TasksClient;
use taskscope_agent::proto::{self, InfoRequest, PageRequest, WatchRequest};
use tonic::transport::Channel;

/// A hooked runtime with a few sleeping tasks, its agent served on
/// loopback, and a client runtime connected to it.
struct Served {
    _target: tokio::runtime::Runtime,
    client: tokio::runtime::Runtime,
    channel: Channel,
}

fn served() -> Served {
    let agent = Agent::new();
    let target = super::common::hooked_runtime(&agent, false);
    agent.attach(target.handle().clone());
    for _ in 0..3 {
        target.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
    }
    let bound = agent
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("serve");
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let channel = client.block_on(async {
        tonic::transport::Endpoint::from_shared(format!("http://{bound}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect")
    });
    Served {
        _target: target,
        client,
        channel,
    }
}

#[test]
fn the_generated_clients_reach_both_services() {
    let s = served();
    s.client.block_on(async {
        let mut dumps = TaskDumpsClient::new(s.channel.clone());
        let info = dumps.info(InfoRequest {}).await.expect("info").into_inner();
        assert_eq!(info.agent_version, env!("CARGO_PKG_VERSION"));
        assert!(info.dumps_supported, "{}", info.why_not);

        let mut tasks = TasksClient::new(s.channel.clone());
        let mut stream = tasks
            .watch(WatchRequest {})
            .await
            .expect("watch")
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the first message at once")
            .expect("a message")
            .expect("not the end");
        let sleepers = first
            .groups
            .iter()
            .find(|g| {
                g.location
                    .as_ref()
                    .is_some_and(|l| l.file.ends_with("wire.rs"))
            })
            .expect("the sleepers' group");
        assert_eq!(sleepers.live, 3);

        let page = tasks
            .page(PageRequest {
                location: sleepers.location.clone(),
                after_id: 0,
                limit: 2,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert_eq!(page.tasks.len(), 2);
        assert_ne!(page.next_after_id, 0, "a third task to come");

        let e = tasks
            .page(PageRequest::default())
            .await
            .expect_err("no location");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    });
}

#[test]
fn a_method_the_contract_lacks_is_unimplemented() {
    let s = served();
    s.client.block_on(async {
        for path in [
            "/taskscope.agent.v1.TaskDumps/Snapshot",
            "/taskscope.agent.v1.Tasks/Snapshot",
            "/taskscope.agent.v2.TaskDumps/Info",
        ] {
            let mut grpc = tonic::client::Grpc::new(s.channel.clone());
            grpc.ready().await.expect("ready");
            let codec = tonic_prost::ProstCodec::<InfoRequest, proto::InfoReply>::default();
            let e = grpc
                .unary(
                    tonic::Request::new(InfoRequest {}),
                    tonic::codegen::http::uri::PathAndQuery::from_static(path),
                    codec,
                )
                .await
                .expect_err("no such method");
            assert_eq!(e.code(), tonic::Code::Unimplemented, "{path}: {e:?}");
        }
    });
}
