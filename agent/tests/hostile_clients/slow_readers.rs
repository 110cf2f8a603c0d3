//! Clients that ask and never read: HTTP/1 scrapes pipelined until no
//! buffer takes more, and gRPC watches whose replies are never read. The
//! agent holds what the buffers and flow-control windows hold, no more;
//! honest clients are served meanwhile; the HTTP/1 ones, whose replies
//! cannot move, are closed when their time is up.

use crate::{Attacked, metrics, scrape_from};
use std::io::{Read, Write};
use std::time::Duration;
use taskscope_agent::Limits;

/// A connection with small buffers on this side, writing `GET /metrics`
/// requests without reading a reply until its writes block: the agent's
/// replies have filled every buffer between, so the agent stopped
/// reading.
fn stalled_scraper(rt: &tokio::runtime::Runtime, addr: &str) -> std::net::TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        socket.set_send_buffer_size(4096).expect("sndbuf");
        socket
            .connect(addr)
            .await
            .expect("connect")
            .into_std()
            .expect("std")
    });
    s.set_nonblocking(true).unwrap();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut pending = Vec::new();
    loop {
        if pending.is_empty() {
            pending = request.repeat(100);
        }
        match (&s).write(&pending) {
            Ok(n) => drop(pending.drain(..n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return s,
            Err(e) => panic!("the agent closed a reader that had not stalled yet: {e}"),
        }
    }
}

/// A `Tasks.Watch` stream, open: its reply's headers came without a
/// status (a busy agent answers a request at once with one: asked again).
async fn open_watch(
    client: &h2::client::SendRequest<bytes::Bytes>,
) -> http::Response<h2::RecvStream> {
    for _ in 0..10_000 {
        let mut c = client.clone().ready().await.expect("ready");
        let req = http::Request::post("/taskscope.agent.v1.Tasks/Watch")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (resp, mut send) = c.send_request(req, false).expect("send");
        // A busy agent may refuse (and end the stream) before the body.
        let _ = send.send_data(bytes::Bytes::from_static(b"\x00\x00\x00\x00\x00"), true);
        let resp = tokio::time::timeout(Duration::from_secs(10), resp)
            .await
            .expect("answered")
            .expect("a response");
        if !resp.headers().contains_key("grpc-status") {
            return resp;
        }
        // Another watch's first walk was running: ask again shortly.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no watch was ever opened");
}

#[test]
fn readers_that_never_read_hold_a_reply_and_are_closed() {
    let attacked = Attacked::start(Limits {
        connections: 64,
        per_peer: 64,
        first_reply: Duration::from_secs(2),
        idle: Duration::from_secs(2),
    });
    let (agent, addr) = (&attacked.agent, attacked.addr.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    // gRPC: 4 connections of 16 watches each, every one open (its reply's
    // headers and first message sent), never read: the h2 client answers
    // pings and settings but releases no flow-control window.
    let watchers = rt.block_on(async {
        let (mut clients, mut held) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            let tcp = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
            tokio::spawn(conn);
            for _ in 0..16 {
                held.push(open_watch(&client).await);
            }
            clients.push(client);
        }
        (clients, held)
    });
    assert_eq!(watchers.1.len(), 64);

    // HTTP/1: 16 connections whose replies fill every buffer.
    let readers: Vec<_> = (0..16).map(|_| stalled_scraper(&rt, &addr)).collect();
    let before = taskscope_agent::testing::health(agent);

    // Meanwhile another host scrapes as usual: no scrape permit, thread or
    // slot is held by a reply nobody reads.
    let served = scrape_from([127, 0, 0, 2], &addr);
    assert!(served.is_some(), "an honest scrape while 16 readers stall");

    // The stalled readers are closed once no byte moved for `idle`: each
    // reads what was in flight, then the end (or a reset), never a wait
    // for more.
    for mut r in readers {
        r.set_nonblocking(false).unwrap();
        r.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a stalled reader was not closed: {e}"),
                Ok(_) => {}
            }
        }
    }
    let h = taskscope_agent::testing::health(agent);
    assert!(
        h.connections_timed_out >= before.connections_timed_out + 16,
        "closed for their silence: {h:?}"
    );
    assert!(metrics(&addr).is_some(), "served after");
    drop(watchers);
    drop(rt);

    attacked.bounded(&format!(
        "readers that never read: 16 HTTP/1 closed ({} timed out in all), 64 unread watches",
        h.connections_timed_out
    ));
}
