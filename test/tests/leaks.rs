//! Each of the demo's leak kinds fails the check, named by its place and
//! its captured wait, with the rule's fix: a read with no timeout, a
//! producer blocked on a full channel, a sleeper with no exit, a oneshot
//! reply that never comes, a `Notify` nobody signals, an HTTP call that
//! never gets its answer; and what the report says of tasks it cannot
//! reach, of ancestry and of split places.

use crate::common::{GRACE, group, leaks};
use std::time::Duration;
use taskscope_test::{Check, Reason, SpawnedBy, Wait};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

fn check() -> Check {
    Check::new().grace(GRACE)
}

fn captured(g: &taskscope_test::LeakedGroup) -> Reason {
    match g.main_wait() {
        Some(Wait::Captured(r)) => *r,
        other => panic!("{} not captured: {other:?}", g.location),
    }
}

/// A pair of connected sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn a_server_reading_with_no_timeout_is_named_with_its_spawner() {
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let enter = rt.enter();
    let accept = line!() + 1;
    taskscope_agent::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            taskscope_agent::spawn(async move {
                let mut buf = [0u8; 64];
                while sock.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            });
        }
    });
    drop(enter);
    let handler = accept + 2;
    // Two clients that connect and never send; kept open past the check.
    let _clients = rt.block_on(async {
        let a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        (a, b)
    });
    let leaks = leaks(&check, &rt);
    assert_eq!(leaks.tasks, 3, "{leaks}");
    let readers = group(&leaks, file!(), handler);
    assert_eq!(readers.tasks, 2, "{leaks}");
    assert_eq!(captured(readers), Reason::SocketRead, "{leaks}");
    let acceptor = format!("{}:{accept}:", file!());
    assert!(
        matches!(&readers.spawned_by[..], [(SpawnedBy::TasksOf(l), 2)] if l.starts_with(&acceptor)),
        "{leaks}"
    );
    let fix = readers.advice.as_ref().map(|a| a.fix.as_str());
    assert!(
        fix.is_some_and(|f| f.contains("tokio::time::timeout")),
        "{leaks}"
    );
    assert_eq!(
        captured(group(&leaks, file!(), accept)),
        Reason::Accept,
        "{leaks}"
    );
    // What a user reads.
    let text = leaks.to_string();
    let head = format!("2 tasks @ {}:{handler}:", file!());
    assert!(
        text.starts_with(
            "taskscope-test: 3 tasks leaked by this test (still alive 150ms after it ended)\n"
        ),
        "{text}"
    );
    assert!(text.contains(&head), "{text}");
    assert!(
        text.contains("blocked on socket read (captured), spawned by tasks of "),
        "{text}"
    );
    assert!(
        text.contains("    likely cause: reads with no timeout"),
        "{text}"
    );
    assert!(text.contains("    fix: bound each read"), "{text}");
    assert!(text.contains("    waits in: "), "{text}");
}

#[test]
fn a_producer_blocked_on_a_full_channel_is_named() {
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let at = line!() + 4;
    let _rx = rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel::<u32>(1);
        tx.send(0).await.unwrap();
        taskscope_agent::spawn(async move { tx.send(1).await });
        rx
    });
    let leaks = leaks(&check, &rt);
    let g = group(&leaks, file!(), at);
    assert_eq!(captured(g), Reason::ChannelSend, "{leaks}");
    assert!(matches!(&g.spawned_by[..], [(SpawnedBy::Outside, 1)]));
    assert!(
        g.advice
            .as_ref()
            .is_some_and(|a| a.fix.contains("send_timeout"))
    );
    assert!(leaks.to_string().contains(
        "blocked on channel send (bounded channel full) (captured), spawned by the test body (outside any task)"
    ));
}

#[test]
fn a_sleeper_with_no_exit_is_named_on_a_multi_thread_runtime() {
    let check = check();
    let rt = check.runtime_multi_thread(2).unwrap();
    let at = line!() + 2;
    rt.block_on(async {
        taskscope_agent::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    });
    let leaks = leaks(&check, &rt);
    let g = group(&leaks, file!(), at);
    assert_eq!(captured(g), Reason::Sleep, "{leaks}");
    assert!(
        g.advice
            .as_ref()
            .is_some_and(|a| a.fix.contains("CancellationToken"))
    );
}

#[test]
fn a_oneshot_reply_that_never_comes_is_named() {
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let at = line!() + 3;
    let _reply = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        taskscope_agent::spawn(rx);
        tx
    });
    let leaks = leaks(&check, &rt);
    let g = group(&leaks, file!(), at);
    assert_eq!(captured(g), Reason::Oneshot, "{leaks}");
    assert!(
        g.advice
            .as_ref()
            .is_some_and(|a| a.fix.contains("drop the Sender"))
    );
}

#[test]
fn a_notify_nobody_signals_is_named() {
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let at = line!() + 4;
    let _notify = rt.block_on(async {
        let notify = std::sync::Arc::new(tokio::sync::Notify::new());
        let n = notify.clone();
        taskscope_agent::spawn(async move { n.notified().await });
        notify
    });
    let leaks = leaks(&check, &rt);
    let g = group(&leaks, file!(), at);
    assert_eq!(captured(g), Reason::Notify, "{leaks}");
    assert!(
        g.advice
            .as_ref()
            .is_some_and(|a| a.fix.contains("notify_one"))
    );
}

/// A hyper call to a server that accepts and never answers: the caller
/// awaits its response, the connection reads its socket.
#[test]
fn an_http_call_with_no_deadline_is_named() {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let (conn_at, call_at) = (line!() + 6, line!() + 7);
    let _server = rt.block_on(async {
        let (client, server) = pair().await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        taskscope_agent::spawn(conn);
        taskscope_agent::spawn(async move {
            let req = hyper::Request::get("/slow")
                .header("host", "test")
                .body(Empty::<bytes::Bytes>::new())
                .unwrap();
            sender.send_request(req).await
        });
        server
    });
    let leaks = leaks(&check, &rt);
    let call = group(&leaks, file!(), call_at);
    assert_eq!(captured(call), Reason::HyperResponse, "{leaks}");
    assert!(
        call.advice
            .as_ref()
            .is_some_and(|a| a.fix.contains("tokio::time::timeout"))
    );
    let conn = group(&leaks, file!(), conn_at);
    assert_eq!(captured(conn), Reason::ResponseRead, "{leaks}");
    assert!(
        leaks
            .to_string()
            .contains("awaiting an HTTP response (a hyper client call) (captured)")
    );
}

#[test]
fn a_task_spawned_unwrapped_is_out_of_reach_never_idle() {
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let at = line!() + 2;
    rt.block_on(async {
        tokio::spawn(std::future::pending::<()>());
    });
    let leaks = leaks(&check, &rt);
    let g = group(&leaks, file!(), at);
    assert_eq!(g.main_wait(), Some(&Wait::OutOfReach));
    assert_eq!(g.advice, None);
    let text = leaks.to_string();
    assert!(
        text.contains(
            "out of reach (spawned without taskscope_agent::spawn or traced: its wait is not known)"
        ),
        "{text}"
    );
    assert!(
        text.contains("(spawn a task with taskscope_agent::spawn"),
        "{text}"
    );
    assert!(!text.contains("idle"), "{text}");
}

/// A line that spawns on others' behalf (the agent's executor for hyper)
/// is named as the view names it: `LINE ← SPAWNER`.
#[test]
fn a_split_place_is_named_with_its_spawner() {
    use hyper::rt::Executor;
    let check = check();
    let rt = check.runtime_current_thread().unwrap();
    let (spawner, exec_at) = (line!() + 3, line!() + 4);
    rt.block_on(async {
        let exec = taskscope_agent::TracedExecutor::new();
        tokio::spawn(async move {
            exec.execute(std::future::pending::<()>());
            std::future::pending::<()>().await
        });
        tokio::task::yield_now().await;
    });
    let leaks = leaks(&check, &rt);
    let (line, by) = (
        format!("{}:{exec_at}:", file!()),
        format!(" ← {}:{spawner}:", file!()),
    );
    assert!(
        leaks
            .groups
            .iter()
            .any(|g| g.location.starts_with(&line) && g.location.contains(&by)),
        "{line}…{by} not in:\n{leaks}"
    );
}

#[test]
fn ignoring_one_place_leaves_the_others_named() {
    let check = check().ignore(format!("{}:{}", file!(), line!() + 4));
    let rt = check.runtime_current_thread().unwrap();
    let kept = line!() + 3;
    rt.block_on(async {
        tokio::spawn(std::future::pending::<()>());
        tokio::spawn(std::future::pending::<()>());
    });
    let leaks = leaks(&check, &rt);
    assert_eq!(leaks.tasks, 1, "{leaks}");
    group(&leaks, file!(), kept);
}
