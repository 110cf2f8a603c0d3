//! The target's console pause state (`WatchState`): taskscope says when
//! another client (tokio-console's space key) has paused the target's
//! console, and never pauses it itself.

use crate::common::{BIN, DemoTarget};
use console_api::instrument::instrument_client::InstrumentClient;
use console_api::instrument::{PauseRequest, ResumeRequest, StateRequest, Temporality};
use std::process::Command;
use tokio_stream::StreamExt;

async fn temporality(client: &mut InstrumentClient<tonic::transport::Channel>) -> i32 {
    let mut s = client
        .watch_state(StateRequest {})
        .await
        .expect("WatchState")
        .into_inner();
    s.next().await.expect("a state").expect("ok").temporality
}

fn watch(addr: &str) -> String {
    let out = Command::new(BIN)
        .args(["watch", addr, "--duration", "2s", "--no-waits"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_console_is_said_and_never_caused() {
    let demo = DemoTarget::start(&["--scenarios", "healthy"]);
    let mut client = InstrumentClient::connect(format!("http://{}", demo.addr))
        .await
        .expect("connect");
    assert_eq!(temporality(&mut client).await, Temporality::Live as i32);
    let addr = demo.addr.clone();
    let stderr = tokio::task::spawn_blocking(move || watch(&addr))
        .await
        .unwrap();
    assert!(!stderr.contains("paused"), "{stderr}");
    assert_eq!(
        temporality(&mut client).await,
        Temporality::Live as i32,
        "taskscope paused the console"
    );
    // Another client pauses it: taskscope says so.
    client.pause(PauseRequest {}).await.expect("pause");
    assert_eq!(temporality(&mut client).await, Temporality::Paused as i32);
    let addr = demo.addr.clone();
    let stderr = tokio::task::spawn_blocking(move || watch(&addr))
        .await
        .unwrap();
    assert!(
        stderr.contains("target's console is paused by another client"),
        "{stderr}"
    );
    client.resume(ResumeRequest {}).await.expect("resume");
}
