//! Starting the demo target: its console-subscriber or taskscope-agent
//! server on the port asked, the address announced once it accepts
//! connections, then the scenarios (`target::workloads`).

use super::options::{DemoSource, Options};
use std::io::Write;
use std::time::Duration;

/// Runs the demo target until killed. Prints `console=127.0.0.1:PORT` on
/// stdout once the console server's address is chosen.
pub fn run(opts: Options) -> anyhow::Result<()> {
    use tracing_subscriber::prelude::*;
    let builder = console_subscriber::ConsoleLayer::builder()
        .publish_interval(opts.publish_interval)
        .retention(opts.retention);
    let (addr, announce): (taskscope_agent::ServerAddr, String) = match &opts.unix {
        #[cfg(unix)]
        Some(path) => (
            path.clone().into(),
            format!("console=file://{}", path.display()),
        ),
        #[cfg(not(unix))]
        Some(_) => anyhow::bail!("Unix sockets are not supported on this platform"),
        None => {
            let port = match opts.port {
                0 => std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port(),
                p => p,
            };
            (
                std::net::SocketAddr::from(([127, 0, 0, 1], port)).into(),
                format!("console=127.0.0.1:{port}"),
            )
        }
    };
    let mut rt_builder = tokio::runtime::Builder::new_multi_thread();
    rt_builder.worker_threads(2).enable_all();
    // With the agent (the default), captures are served on the same port;
    // the hooks source needs it.
    let hooks = opts.source != DemoSource::Console;
    let agent = (opts.agent || hooks).then(taskscope_agent::Agent::new);
    if let (Some(agent), true) = (&agent, hooks) {
        agent.install_hooks(&mut rt_builder);
    }
    match (&agent, opts.source) {
        (Some(agent), DemoSource::Hooks) => {
            agent.serve(addr.clone())?;
        }
        (Some(agent), _) => tracing_subscriber::registry()
            .with(agent.spawn(builder, addr.clone()))
            .init(),
        (None, _) => builder
            .server_addr(console_subscriber::ServerAddr::from(addr.clone()))
            .init(),
    }
    // Announce the address once the console accepts connections, so that
    // whoever reads it can connect at once.
    wait_listening(&addr, Duration::from_secs(10));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{announce}")?;
        out.flush()?;
    }
    if opts.exit_on_stdin_close {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            std::process::exit(0);
        });
    }
    let rt = rt_builder.build()?;
    if let Some(agent) = &agent {
        agent.attach(rt.handle().clone());
    }
    rt.block_on(super::target::workloads(opts))
}

/// Waits until `addr` accepts a connection (or `limit` passes: the client
/// then reports what it finds).
fn wait_listening(addr: &taskscope_agent::ServerAddr, limit: Duration) {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let up = match addr {
            taskscope_agent::ServerAddr::Tcp(a) => {
                std::net::TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok()
            }
            #[cfg(unix)]
            taskscope_agent::ServerAddr::Unix(p) => {
                std::os::unix::net::UnixStream::connect(p).is_ok()
            }
            #[allow(unreachable_patterns)]
            _ => true,
        };
        if up {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
