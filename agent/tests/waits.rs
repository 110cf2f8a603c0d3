//! Exact waits from per-task captures, on real runtimes with the hooks
//! source: each primitive's task reads as what it waits on, a capture
//! holds only until the task runs again, and the agent's own polls are
//! not counted as the task's.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use taskscope_agent::Agent;

use crate::common::hooked_runtime as runtime;

/// The leaf frames' names of each captured task, by task id.
fn leaves(reply: &taskscope_agent::proto::DumpReply) -> HashMap<u64, Vec<String>> {
    reply
        .tasks
        .iter()
        .map(|t| {
            let trace = &reply.traces[t.trace as usize];
            let names = trace
                .leaves
                .iter()
                .map(|l| {
                    l.frames
                        .iter()
                        .map(|f| format!("{} ({})", f.name, f.file))
                        .collect::<Vec<_>>()
                        .join(" > ")
                })
                .collect();
            (t.id, names)
        })
        .collect()
}

/// Asks for waits until every task in `ids` has one, or 20 s pass.
fn waits_of(
    agent: &Agent,
    ids: &[u64],
) -> (taskscope_agent::proto::DumpReply, HashMap<u64, Vec<String>>) {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = client
            .block_on(agent.waits(Duration::from_secs(1)))
            .expect("waits");
        let by_id = leaves(&reply);
        if ids.iter().all(|id| by_id.contains_key(id)) || Instant::now() > deadline {
            return (reply, by_id);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn id(h: &tokio::task::JoinHandle<()>) -> u64 {
    taskscope_agent::live::task_id(h.id())
}

#[test]
fn each_wait_is_captured_by_the_task_itself() {
    for current_thread in [false, true] {
        let agent = Agent::builder()
            .min_interval(Duration::ZERO)
            .build()
            .expect("agent");
        let rt = runtime(&agent, current_thread);
        let (ids_tx, ids_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let driver = std::thread::spawn(move || {
            rt.block_on(async move {
                let mut ids: HashMap<&str, u64> = HashMap::new();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let client = tokio::net::TcpStream::connect(addr).await.unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                let h = taskscope_agent::spawn(async move {
                    let mut buf = [0u8; 16];
                    let _ = tokio::io::AsyncReadExt::read(&mut server, &mut buf).await;
                });
                ids.insert("read", id(&h));
                let h = taskscope_agent::spawn(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
                ids.insert("sleep", id(&h));
                let (otx, orx) = tokio::sync::oneshot::channel::<()>();
                let h = taskscope_agent::spawn(async move {
                    let _ = orx.await;
                });
                ids.insert("oneshot", id(&h));
                let (tx, rx) = tokio::sync::mpsc::channel::<u8>(1);
                tx.send(0).await.unwrap();
                let h = taskscope_agent::spawn(async move {
                    let _ = tx.send(1).await;
                });
                ids.insert("send", id(&h));
                let notify = std::sync::Arc::new(tokio::sync::Notify::new());
                let n = notify.clone();
                let h = taskscope_agent::spawn(async move { n.notified().await });
                ids.insert("notify", id(&h));
                let (rtx, mut rrx) = tokio::sync::mpsc::channel::<u8>(1);
                let h = taskscope_agent::spawn(async move {
                    let _ = rrx.recv().await;
                });
                ids.insert("recv", id(&h));
                // Waits tokio cannot trace (no trace leaf): an accept,
                // a UDP receive, a future outside tokio. Their captures
                // are where they registered their waker.
                let idle_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let h = taskscope_agent::spawn(async move {
                    let _ = idle_listener.accept().await;
                });
                ids.insert("accept", id(&h));
                let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let h = taskscope_agent::spawn(async move {
                    let mut buf = [0u8; 16];
                    let _ = udp.recv(&mut buf).await;
                });
                ids.insert("udp", id(&h));
                let h = taskscope_agent::spawn(async {
                    let waker = futures_util::task::AtomicWaker::new();
                    std::future::poll_fn(|cx| {
                        waker.register(cx.waker());
                        std::task::Poll::<()>::Pending
                    })
                    .await
                });
                ids.insert("not tokio", id(&h));
                let (wtx, mut wrx) = tokio::sync::watch::channel(0u8);
                let h = taskscope_agent::spawn(async move {
                    let _ = wrx.changed().await;
                });
                ids.insert("watch", id(&h));
                let (btx, mut brx) = tokio::sync::broadcast::channel::<u8>(4);
                let h = taskscope_agent::spawn(async move {
                    let _ = brx.recv().await;
                });
                ids.insert("broadcast", id(&h));
                let (utx, mut urx) = tokio::sync::mpsc::unbounded_channel::<u8>();
                let h = taskscope_agent::spawn(async move {
                    let _ = urx.recv().await;
                });
                ids.insert("unbounded recv", id(&h));
                let rw = std::sync::Arc::new(tokio::sync::RwLock::new(0u8));
                let held = rw.clone().read_owned().await;
                let h = taskscope_agent::spawn(async move {
                    *rw.write().await += 1;
                });
                ids.insert("rwlock", id(&h));
                let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
                let s2 = sem.clone();
                let h = taskscope_agent::spawn(async move {
                    let _ = s2.acquire().await;
                });
                ids.insert("semaphore", id(&h));
                let forever = tokio::spawn(std::future::pending::<()>());
                let h = taskscope_agent::spawn(async move {
                    let _ = forever.await;
                });
                ids.insert("join", id(&h));
                let h = taskscope_agent::spawn(async move {
                    let mut set = tokio::task::JoinSet::new();
                    set.spawn(std::future::pending::<()>());
                    let _ = set.join_next().await;
                });
                ids.insert("join set", id(&h));
                let mut child = tokio::process::Command::new("sleep")
                    .arg("3600")
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                let h = taskscope_agent::spawn(async move {
                    let _ = child.wait().await;
                });
                ids.insert("process", id(&h));
                let mut usr1 =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                        .unwrap();
                let h = taskscope_agent::spawn(async move {
                    let _ = usr1.recv().await;
                });
                ids.insert("signal", id(&h));
                // Not wrapped: counted, but out of the agent's reach.
                let h = tokio::spawn(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                });
                ids.insert("unwrapped", id(&h));
                tokio::task::yield_now().await;
                ids_tx.send(ids).unwrap();
                // The runtime runs (a current_thread one only inside
                // `block_on`) until the test is done.
                let _ = stop_rx.await;
                drop((client, otx, rx, notify, rtx));
                drop((wtx, btx, utx, held, sem));
            })
        });
        let ids = ids_rx.recv().expect("tasks spawned");
        let wanted: Vec<u64> = ids
            .iter()
            .filter(|(k, _)| **k != "unwrapped")
            .map(|(_, v)| *v)
            .collect();
        let (_, by_id) = waits_of(&agent, &wanted);
        let expect = [
            // The file, as any build names it (line tables only: bare names).
            ("read", "net/tcp/stream.rs"),
            ("sleep", "time/sleep.rs"),
            ("oneshot", "sync/oneshot.rs"),
            ("send", "sync/batch_semaphore.rs"),
            ("notify", "sync/notify.rs"),
            ("recv", "sync/mpsc/chan.rs"),
            ("accept", "net/tcp/listener.rs"),
            ("udp", "net/udp.rs"),
            ("not tokio", "atomic_waker.rs"),
            ("watch", "sync/watch.rs"),
            ("broadcast", "sync/broadcast.rs"),
            ("unbounded recv", "sync/mpsc/unbounded.rs"),
            ("rwlock", "sync/rwlock.rs"),
            ("semaphore", "sync/semaphore.rs"),
            ("join", "runtime/task/join.rs"),
            ("join set", "task/join_set.rs"),
            ("process", "src/process/"),
            ("signal", "src/signal/"),
        ];
        for (name, leaf) in expect {
            let got = by_id
                .get(&ids[name])
                .unwrap_or_else(|| panic!("{name}: no capture (current_thread={current_thread})"));
            assert!(
                got.iter().any(|l| l.contains(leaf)),
                "{name} (current_thread={current_thread}): {got:#?}"
            );
        }
        assert!(!by_id.contains_key(&ids["unwrapped"]));
        let _ = stop_tx.send(());
        driver.join().expect("runtime thread");
    }
}

/// Tasks an executor spawns (hyper's connection and stream tasks, tonic's
/// `Endpoint::executor`) are reachable through `TracedExecutor`, and
/// `taskscope_agent::traced` works where a future is spawned some other
/// way (here a `JoinSet`).
#[test]
fn executors_and_join_sets_reach_their_tasks() {
    use hyper::rt::Executor;
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .build()
        .expect("agent");
    let rt = runtime(&agent, false);
    let (tx, rx) = std::sync::mpsc::channel();
    let (exec_tx, exec_rx) = std::sync::mpsc::channel();
    let mut set = tokio::task::JoinSet::new();
    rt.block_on(async {
        let (_keep, wait) = tokio::sync::oneshot::channel::<()>();
        taskscope_agent::TracedExecutor::new().execute(async move {
            // Its id, known only inside: the executor hands back no handle.
            exec_tx
                .send(taskscope_agent::live::task_id(tokio::task::id()))
                .expect("id");
            let _ = wait.await;
            drop(_keep);
        });
        let h = set.spawn(taskscope_agent::traced(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }));
        tx.send(taskscope_agent::live::task_id(h.id())).expect("id");
    });
    let built = rx.recv().expect("id");
    let executed = exec_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the executor's task ran");
    let (_, by_id) = waits_of(&agent, &[built, executed]);
    assert!(
        by_id
            .get(&built)
            .is_some_and(|l| l.iter().any(|f| f.contains("time/sleep.rs"))),
        "{by_id:#?}"
    );
    assert!(
        by_id
            .get(&executed)
            .is_some_and(|l| l.iter().any(|f| f.contains("sync/oneshot.rs"))),
        "{by_id:#?}"
    );
}
