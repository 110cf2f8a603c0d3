//! Protocol garbage: HTTP/1 and HTTP/2 noise, path tricks, malformed and
//! oversized gRPC, unknown methods, HTTP/2 rapid reset.

use crate::{Attacked, metrics};
use std::io::{Read, Write};
use std::time::Duration;
use taskscope_agent::Limits;

#[test]
fn protocol_garbage_and_rapid_resets_are_refused_and_bounded() {
    let attacked = Attacked::start_with(Limits::default(), Some("hostile-tests-token-0123"));
    let (rt, addr) = (&attacked.rt, attacked.addr.clone());
    let raw = |bytes: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    // HTTP/1 garbage: an error reply or a closed connection, never more.
    for garbage in [
        &b"\x00\x01\x02\x03garbage\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        &[b'A'; 70_000][..],
    ] {
        let reply = raw(garbage);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{:?}",
            &reply[..reply.len().min(200)]
        );
    }
    // HTTP/2 garbage after a valid preface: a SETTINGS frame of a length
    // no settings have, HEADERS on stream 0, a frame claiming 16 MiB, a
    // frame of an unknown type then noise. Each ends the connection (a
    // GOAWAY and a close), within the read timeout: never held open.
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for frames in [
        &[0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5][..],
        &[0, 0, 1, 0x1, 0x4, 0, 0, 0, 0, 0x82][..],
        &[0xff, 0xff, 0xff, 0x0, 0, 0, 0, 0, 1, 0xde, 0xad][..],
        &[
            0, 0, 4, 0xee, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0xff,
        ][..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(PREFACE);
        let _ = s.write_all(frames);
        let mut out = Vec::new();
        let closed = match s.read_to_end(&mut out) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed,
            "HTTP/2 garbage {frames:?}: the connection stayed open"
        );
    }
    // Path tricks: only `/metrics`, `/debug/pprof/tasks` and `/` are
    // served over plain HTTP.
    for path in [
        "/debug/pprof/tasks/../tasks",
        "/debug/pprof/../pprof/tasks",
        "/debug/pprof/tasks/",
        "/metrics/../metrics",
        "//metrics",
        "/METRICS",
        "/%6Detrics",
        "/metrics/",
        "/taskscope.agent.v1.TaskDumps/Dump",
        "/../../etc/passwd",
    ] {
        let reply =
            raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        assert!(
            reply.starts_with("HTTP/1.1 404") || reply.starts_with("HTTP/1.1 400"),
            "{path}: {reply}"
        );
    }
    // gRPC over HTTP/1 without the token: refused before any method runs.
    let reply = raw(b"POST /taskscope.agent.v1.TaskDumps/Dump HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\x00\x00\x00\x00\x00");
    assert!(reply.contains("grpc-status: 16"), "{reply}");

    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let conn = tokio::spawn(conn);
        let request = |path: &str, token: bool| {
            let mut r = http::Request::post(path).header("content-type", "application/grpc");
            if token {
                r = r.header("authorization", "Bearer hostile-tests-token-0123");
            }
            r.body(()).unwrap()
        };
        // With the token: an unknown method, a malformed message, one that
        // claims 4 GiB, each answered with an error status.
        for (path, body) in [
            (
                "/taskscope.agent.v1.TaskDumps/Nope",
                &b"\x00\x00\x00\x00\x00"[..],
            ),
            (
                "/taskscope.agent.v1.TaskDumps/Info",
                b"\x00\x00\x00\x00\x05\xff\xff\xff\xff\xff",
            ),
            (
                "/taskscope.agent.v1.TaskDumps/Dump",
                b"\x00\xff\xff\xff\xff",
            ),
            ("/no.such.Service/Method", b""),
        ] {
            let mut c = client.clone().ready().await.expect("ready");
            let (resp, mut send) = c.send_request(request(path, true), false).expect("send");
            // The agent may answer (and end the stream) before the body
            // is sent, as for an unknown method: the answer is what counts.
            let _ = send.send_data(bytes::Bytes::copy_from_slice(body), true);
            let resp = tokio::time::timeout(Duration::from_secs(5), resp)
                .await
                .expect("answered in time")
                .expect("a response");
            let (parts, mut body) = resp.into_parts();
            let mut status = parts.headers.get("grpc-status").cloned();
            if status.is_none() {
                while body.data().await.is_some() {}
                status = body
                    .trailers()
                    .await
                    .ok()
                    .flatten()
                    .and_then(|t| t.get("grpc-status").cloned());
            }
            let code = status.and_then(|s| s.to_str().ok()?.parse::<i32>().ok());
            assert!(code.is_some_and(|c| c != 0), "{path}: {code:?}");
        }
        // Rapid reset (CVE-2023-44487): streams opened and cancelled at
        // once, as fast as the client can; the agent ends the connection.
        let mut opened = 0;
        let ended = loop {
            let mut c = match client.clone().ready().await {
                Ok(c) => c,
                Err(e) => break e.to_string(),
            };
            match c.send_request(request("/taskscope.agent.v1.Tasks/Watch", true), false) {
                Ok((_, mut send)) => send.send_reset(h2::Reason::CANCEL),
                Err(e) => break e.to_string(),
            }
            opened += 1;
            if opened > 100_000 {
                break "not ended".into();
            }
        };
        assert!(opened < 100_000, "the agent let {opened} resets through");
        eprintln!("rapid reset: connection ended after {opened} streams ({ended})");
        conn.abort();
        drop(client);
    });
    attacked.bounded("protocol garbage");
    // Honest clients are still served.
    assert!(metrics(&addr).is_some());
}
