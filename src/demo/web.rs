//! The write-ups' leaks on the stack services run: an axum server, a tonic
//! server with a streaming RPC, reqwest calls. Each marked site is
//! preceded by a `// spawn: NAME` (or `// serve: NAME`) comment line, so
//! tests can find its exact `file:line`.

use super::traced::Builder;
use axum::routing::get;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Leak: an axum server with no header-read timeout (the first write-up's
/// server without `ReadHeaderTimeout`), served through the agent's
/// drop-in, so its connections capture themselves: each client that made
/// one keep-alive request and went quiet keeps a connection task waiting
/// to read its next request, counted at the line that started the server.
pub async fn axum_idle(every: Duration, max: usize) -> anyhow::Result<()> {
    let app = axum::Router::new().route("/", get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // serve: axum-idle (the next `serve(` is where the connections count)
    let server = taskscope_agent::axum::serve(listener, app);
    Builder::new()
        .name("axum-server")
        .spawn(server.into_future())?;
    Builder::new()
        .name("quiet-clients")
        .spawn(quiet_clients(addr, every, max))?;
    Ok(())
}

/// Opens a keep-alive connection every `every`, asks once, and keeps it
/// open without another word.
async fn quiet_clients(addr: SocketAddr, every: Duration, max: usize) {
    let mut open = Vec::new();
    let mut tick = tokio::time::interval(every);
    while open.len() < max {
        tick.tick().await;
        if let Ok(mut c) = TcpStream::connect(addr).await
            && ask_once(&mut c).await
        {
            open.push(c);
        }
    }
    tokio::sync::Notify::new().notified().await;
}

/// One `GET /` on a keep-alive connection, its response read.
async fn ask_once(c: &mut TcpStream) -> bool {
    if c.write_all(b"GET / HTTP/1.1\r\nhost: demo\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !got.ends_with(b"ok") {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// Leak: a tonic server (through the agent's drop-in) with a streaming
/// RPC, the standard health service's `Watch`, and a client that opens a
/// watch every `every` and never closes one: each open call keeps a
/// stream task, which captures itself waiting for the next status change.
pub async fn grpc_streams(every: Duration, max: usize) -> anyhow::Result<()> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let routes = tonic::service::Routes::new(health);
    // serve: grpc-streams (the next `serve(` is where the connections count)
    let server = taskscope_agent::tonic::serve(listener, routes);
    Builder::new()
        .name("grpc-server")
        .spawn(server.into_future())?;
    Builder::new().name("watchers").spawn(async move {
        let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
            return;
        };
        let Ok(channel) = endpoint.connect().await else {
            return;
        };
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let mut open = Vec::new();
        let mut tick = tokio::time::interval(every);
        while open.len() < max {
            tick.tick().await;
            let req = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            // Opened and kept, never read again.
            if let Ok(stream) = client.watch(req).await {
                open.push(stream);
            }
        }
        tokio::sync::Notify::new().notified().await;
        // The reporter lives as long as the streams.
        drop(_reporter);
    })?;
    Ok(())
}

/// Leak: calls to an upstream that accepts and never answers, with no
/// timeout (the write-ups' `http.Client` without `Timeout`): each call's
/// task waits for a response forever, and so does reqwest's connection
/// task under it (reqwest spawns those itself: out of reach, split by
/// the tasks that opened them). Beside it a healthy poller calls a healthy
/// server every 200 ms through one pooled connection: its connection group
/// stays at one.
pub async fn http_no_timeout(every: Duration, max: usize) -> anyhow::Result<()> {
    let silent = TcpListener::bind("127.0.0.1:0").await?;
    let upstream = silent.local_addr()?;
    Builder::new().name("silent-upstream").spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    })?;
    let healthy = TcpListener::bind("127.0.0.1:0").await?;
    let healthy_addr = healthy.local_addr()?;
    let app = axum::Router::new().route("/health", get(|| async { "ok" }));
    // A plain axum server: its connection tasks are out of the agent's
    // reach, named by what they are.
    Builder::new()
        .name("healthy-upstream")
        .spawn(axum::serve(healthy, app).into_future())?;
    let client = reqwest::Client::new();
    let c = client.clone();
    Builder::new().name("fetch-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let c = c.clone();
            // spawn: http-no-timeout (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("fetch").spawn(async move {
                let _ = c.get(format!("http://{upstream}/slow")).send().await;
            });
        }
    })?;
    // spawn: healthy-poller (the next `.spawn(` is the spawn location)
    Builder::new().name("health-poller").spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            if let Ok(r) = client
                .get(format!("http://{healthy_addr}/health"))
                .send()
                .await
            {
                let _ = r.bytes().await;
            }
        }
    })?;
    Ok(())
}
