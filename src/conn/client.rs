//! The connection task: connect, stream updates, reconnect with capped
//! exponential backoff. The only code that talks gRPC.

use super::addr::Target;
use super::agent::DumpTrigger;
use super::convert;
use super::error::ConnError;
use crate::model::Update;
use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use prost::Message;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tonic::transport::Endpoint;

/// How the connection behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest update accepted. tonic's default of 4 MiB is too small for
    /// large targets, whose first deltas run to tens of MiB.
    pub max_message_size: usize,
    /// Limit for TCP connect and for the first response to arrive.
    pub connect_timeout: Duration,
    /// A stream that sends nothing for this long is treated as stalled
    /// (the subscriber publishes every interval, even when idle).
    pub stall_timeout: Duration,
    /// HTTP/2 keepalive pings: how often, and how long to wait for the
    /// answer before the connection counts as dead.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Keep retrying after failures (the TUI); `false` stops at the first.
    pub reconnect: bool,
    /// When to take task dumps, if the target serves the agent.
    pub dumps: DumpOptions,
}

/// When task dumps are taken (only with `taskscope-agent` in the target).
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// Ask for dumps at all (the agent is still detected).
    pub enabled: bool,
    /// One as soon as the agent is detected (after `first_after`).
    pub on_connect: bool,
    /// How long after connecting that first dump is taken.
    pub first_after: Duration,
    /// Then one every `interval` (never sooner than 100× the last capture
    /// took, nor than the agent allows); `None`: only on request.
    pub interval: Option<Duration>,
    /// How long the agent may wait for the runtime to pause.
    pub timeout: Duration,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            enabled: true,
            on_connect: true,
            first_after: Duration::ZERO,
            interval: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_size: 256 << 20,
            connect_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            reconnect: true,
            dumps: DumpOptions::default(),
        }
    }
}

/// Connection state, as the status line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Connecting {
        attempt: u32,
    },
    Connected,
    Reconnecting {
        at: Instant,
        error: ConnError,
        attempt: u32,
    },
    Failed(ConnError),
}

/// What the connection task reports.
#[derive(Debug)]
pub enum Event {
    Status(Status),
    /// A new stream began: the next update may be a full state.
    StreamStarted,
    Update(Box<Update>),
    /// What the target's task-dump agent can do (once per stream), and the
    /// capture windows of its recent dumps (by any client).
    Agent(
        crate::model::Agent,
        Vec<(crate::model::Ts, crate::model::Ts)>,
    ),
    /// A task dump was asked for (its polls are on their way).
    DumpStarted,
    /// A task dump, or why it failed.
    Dump(Result<Box<crate::model::TaskDump>, String>),
}

/// Doubling delay, capped.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    initial: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            next: initial,
            max,
            initial,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Runs until the receiver is dropped, or (without `reconnect`) until the
/// first failure.
pub async fn run(target: Target, opts: Options, tx: mpsc::Sender<Event>, dumps: DumpTrigger) {
    let mut backoff = Backoff::new(opts.backoff_initial, opts.backoff_max);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if tx
            .send(Event::Status(Status::Connecting { attempt }))
            .await
            .is_err()
        {
            return;
        }
        let err = match stream_once(&target, &opts, &tx, &mut backoff, &dumps).await {
            Ok(()) => return, // receiver gone
            Err(e) => e,
        };
        if !opts.reconnect {
            let _ = tx.send(Event::Status(Status::Failed(err))).await;
            return;
        }
        let delay = backoff.next_delay();
        let at = Instant::now() + delay;
        let status = Status::Reconnecting {
            at,
            error: err,
            attempt,
        };
        if tx.send(Event::Status(status)).await.is_err() {
            return;
        }
        tokio::time::sleep_until(at).await;
    }
}

/// One connection: Ok(()) only when the receiver went away.
async fn stream_once(
    target: &Target,
    opts: &Options,
    tx: &mpsc::Sender<Event>,
    backoff: &mut Backoff,
    dumps: &DumpTrigger,
) -> Result<(), ConnError> {
    let name = target.display.as_str();
    let endpoint = Endpoint::from_shared(target.uri.clone())
        .map_err(|e| ConnError::Other(name.into(), e.to_string()))?
        .connect_timeout(opts.connect_timeout)
        .http2_keep_alive_interval(opts.keepalive_interval)
        .keep_alive_timeout(opts.keepalive_timeout)
        .keep_alive_while_idle(true);
    let connect = async {
        match &target.unix {
            None => endpoint.connect().await,
            #[cfg(not(unix))]
            Some(_) => {
                return Err(ConnError::Other(
                    name.into(),
                    "Unix sockets are not supported on this platform".into(),
                ));
            }
            #[cfg(unix)]
            Some(path) => {
                let path = path.clone();
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            }
        }
    };
    let channel = match timeout(opts.connect_timeout, connect).await {
        Err(_) => {
            return Err(ConnError::Timeout(
                name.into(),
                opts.connect_timeout.as_secs(),
            ));
        }
        Ok(Err(e)) => return Err(ConnError::from_transport(name, &e)),
        Ok(Ok(c)) => c,
    };
    let mut client =
        InstrumentClient::new(channel.clone()).max_decoding_message_size(opts.max_message_size);
    // Stops the agent task when this stream ends.
    let mut _agent_task: Option<AbortOnDrop> = None;
    let mut stream = match timeout(
        opts.connect_timeout,
        client.watch_updates(InstrumentRequest {}),
    )
    .await
    {
        Err(_) => {
            return Err(ConnError::Timeout(
                name.into(),
                opts.connect_timeout.as_secs(),
            ));
        }
        Ok(Err(status)) => return Err(ConnError::from_status(name, &status, false)),
        Ok(Ok(resp)) => resp.into_inner(),
    };
    if tx.send(Event::StreamStarted).await.is_err() {
        return Ok(());
    }
    let mut announced = false;
    loop {
        let msg = match timeout(opts.stall_timeout, stream.message()).await {
            Err(_) => {
                return Err(ConnError::Broken(
                    name.into(),
                    format!("no update for {}s (stalled)", opts.stall_timeout.as_secs()),
                ));
            }
            Ok(Err(status)) => return Err(ConnError::from_status(name, &status, announced)),
            Ok(Ok(None)) => {
                return Err(ConnError::Broken(
                    name.into(),
                    "the target closed the stream".into(),
                ));
            }
            Ok(Ok(Some(m))) => m,
        };
        if !announced {
            announced = true;
            backoff.reset();
            if tx.send(Event::Status(Status::Connected)).await.is_err() {
                return Ok(());
            }
            _agent_task = Some(AbortOnDrop(tokio::spawn(super::agent::run(
                channel.clone(),
                opts.clone(),
                tx.clone(),
                dumps.clone(),
            ))));
        }
        let bytes = msg.encoded_len();
        let update = convert::update(msg, bytes);
        if tx.send(Event::Update(Box::new(update))).await.is_err() {
            return Ok(());
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        let seq: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seq, vec![250, 500, 1000, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(250));
    }
}
