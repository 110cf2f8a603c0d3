//! Clients that ask for a walk of the tasks and give up before the
//! answer, again and again. The walk goes on without its client; if the
//! way were free for the next request, walks would pile up on the agent's
//! few threads and everything behind them (the `/metrics` anyone may
//! scrape, the groups' publisher) would wait. Each walk holds its slot
//! until it ends: the next requests are busy meanwhile.

use crate::{Attacked, scrape_from};
use std::time::{Duration, Instant};
use taskscope_agent::limits::Limits;

/// A gRPC message's body: the length-prefixed message.
fn grpc_body(msg: &impl prost::Message) -> bytes::Bytes {
    let msg = msg.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(&msg);
    body.into()
}

/// The requests of the storms, one kind each: `Tasks.Page` (any location:
/// the walk visits every task to find them) and `TaskDumps.Dump` (its
/// reply walks every task for the captures that hold).
fn requests() -> [(&'static str, bytes::Bytes); 2] {
    use taskscope_agent::proto;
    [
        (
            "/taskscope.agent.v1.Tasks/Page",
            grpc_body(&proto::PageRequest {
                location: Some(proto::Loc {
                    file: "src/nowhere.rs".into(),
                    line: 1,
                    column: 1,
                }),
                after_id: 0,
                limit: 10,
                ..Default::default()
            }),
        ),
        (
            proto::DUMP_PATH,
            grpc_body(&proto::DumpRequest { timeout_ms: 100 }),
        ),
    ]
}

#[test]
fn requests_cancelled_mid_walk_cannot_pile_up_walks() {
    let mut attacked = Attacked::start(Limits {
        connections: 64,
        per_peer: 64,
        first_reply: Duration::from_secs(30),
        idle: Duration::from_secs(30),
    });
    // Enough tasks that a walk takes a while.
    attacked.rt.block_on(async {
        for _ in 0..400_000 {
            tokio::spawn(std::future::pending::<()>());
        }
    });
    attacked.rebase();
    let addr = attacked.addr.clone();
    let (served, calm) = timed_scrape(&addr);
    assert!(served, "a scrape before");
    // One storm per kind of walk: each must leave the scrapes alone.
    let mut seen = Vec::new();
    for (path, body) in requests() {
        let (asked, gave_up, worst, after) = storm_while_scraping(&addr, path, body);
        assert!(
            gave_up >= 10,
            "{path}: the storm gave up on walks: {gave_up} of {asked}"
        );
        seen.push(format!(
            "{path}: {asked} asked, {gave_up} given up, the slowest scrape {} ms, right after {} ms",
            worst.as_millis(),
            after.as_millis()
        ));
        // Walks left behind never queue: a scrape waits for one walk at most.
        let bound = calm * 10 + Duration::from_secs(1);
        assert!(
            worst < bound && after < bound,
            "{path}: scrapes waited behind abandoned walks: the slowest {worst:?}, right after {after:?} (calm {calm:?})"
        );
    }
    attacked.bounded(&format!(
        "requests cancelled mid-walk (calm scrape {} ms): {}",
        calm.as_millis(),
        seen.join("; ")
    ));
}

/// A scrape of `/metrics` from another host (127.0.0.2): served, and how
/// long it took.
fn timed_scrape(addr: &str) -> (bool, Duration) {
    let t = Instant::now();
    let served = scrape_from([127, 0, 0, 2], addr).is_some();
    (served, t.elapsed())
}

/// For 3 s, requests to `path`, each given up on (reset) unless answered
/// within 1 ms (a walk of 400 000 tasks takes longer), while another host
/// scrapes as Prometheus would: how many were asked and given up, the
/// slowest scrape meanwhile and one right after.
fn storm_while_scraping(
    addr: &str,
    path: &'static str,
    body: bytes::Bytes,
) -> (u32, u32, Duration, Duration) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let (stop, addr) = (stop.clone(), addr.to_string());
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (served, took) = timed_scrape(&addr);
                assert!(served, "a scrape during the storm");
                worst = worst.max(took);
            }
            worst
        })
    };
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lasts = Duration::from_secs(3);
    let (asked, gave_up) = client.block_on(async {
        let (mut asked, mut gave_up) = (0u32, 0u32);
        let started = Instant::now();
        'storm: while started.elapsed() < lasts {
            let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let Ok((h2c, conn)) = h2::client::handshake(tcp).await else {
                continue;
            };
            let conn = tokio::spawn(conn);
            while started.elapsed() < lasts {
                let Ok(mut c) = h2c.clone().ready().await else {
                    break;
                };
                let req = http::Request::post(path)
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(())
                    .unwrap();
                let Ok((resp, mut send)) = c.send_request(req, false) else {
                    break;
                };
                if send.send_data(body.clone(), true).is_err() {
                    break;
                }
                asked += 1;
                match tokio::time::timeout(Duration::from_millis(1), resp).await {
                    Ok(Ok(_answered)) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        send.send_reset(h2::Reason::CANCEL);
                        gave_up += 1;
                    }
                }
                if asked > 200_000 {
                    break 'storm;
                }
            }
            conn.abort();
        }
        (asked, gave_up)
    });
    let (served, after) = timed_scrape(addr);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = scraper.join().expect("scraper");
    assert!(served, "a scrape after");
    (asked, gave_up, worst, after)
}
