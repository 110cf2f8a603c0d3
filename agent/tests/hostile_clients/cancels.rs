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

/// The requests the storm sends, by turns: `Tasks.Page` (any location:
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
    let timed_scrape = {
        let addr = addr.clone();
        move || {
            let t = Instant::now();
            let served = scrape_from([127, 0, 0, 2], &addr).is_some();
            (served, t.elapsed())
        }
    };
    let (served, calm) = timed_scrape();
    assert!(served, "a scrape before");

    // Meanwhile another host scrapes, as Prometheus would.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        let timed_scrape = timed_scrape.clone();
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut scrapes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (served, took) = timed_scrape();
                assert!(served, "a scrape during the storm");
                worst = worst.max(took);
                scrapes += 1;
            }
            (worst, scrapes)
        })
    };

    // The storm: requests for a page of tasks and for waits, each given up
    // on unless it is answered within 1 ms (a walk of 400 000 tasks takes longer), for 4 s.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (asked, gave_up) = client.block_on(async {
        let requests = requests();
        let (mut asked, mut gave_up) = (0u32, 0u32);
        let started = Instant::now();
        'storm: while started.elapsed() < Duration::from_secs(4) {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let Ok((h2c, conn)) = h2::client::handshake(tcp).await else {
                continue;
            };
            let conn = tokio::spawn(conn);
            while started.elapsed() < Duration::from_secs(4) {
                let Ok(mut c) = h2c.clone().ready().await else {
                    break;
                };
                let (path, body) = &requests[asked as usize % requests.len()];
                let req = http::Request::post(*path)
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
    let (served, after) = timed_scrape();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, scrapes) = scraper.join().expect("scraper");
    assert!(served, "a scrape after");
    assert!(
        gave_up >= 10,
        "the storm gave up on walks: {gave_up} of {asked}"
    );
    attacked.bounded(
        &format!(
            "requests cancelled mid-walk: {asked} asked, {gave_up} given up; {scrapes} scrapes meanwhile, the slowest {} ms (calm: {} ms), right after {} ms",
            worst.as_millis(),
            calm.as_millis(),
            after.as_millis()
        ),
    );
    // Walks left behind never queue: a scrape waits for one walk at most.
    let bound = calm * 10 + Duration::from_secs(1);
    assert!(
        worst < bound && after < bound,
        "scrapes waited behind abandoned walks: the slowest {worst:?}, right after {after:?} (calm {calm:?})"
    );
}
