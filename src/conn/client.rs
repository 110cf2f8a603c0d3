//! The connection task: connect, stream updates, reconnect with capped
//! exponential backoff. The only code that talks gRPC.

use super::addr::Target;
use super::convert;
use super::error::ConnError;
use super::{Event, Options, Requests, Status};
use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;
use prost::Message;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Endpoint;

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
pub async fn run(target: Target, mut opts: Options, tx: mpsc::Sender<Event>, waits: Requests) {
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
        let err = match stream_once(&target, &opts, &tx, &mut backoff, &waits).await {
            Ok(()) => return, // receiver gone
            Err(e) => e,
        };
        // Refused: unless the token file now holds another token (the
        // secret was rotated), asking again cannot help.
        if err.is_permanent()
            && let Some(rotated) = opts.token.as_ref().and_then(super::Credential::reread)
        {
            opts.token = Some(rotated);
            continue;
        }
        if !opts.reconnect || err.is_permanent() {
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
    waits: &Requests,
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
        Ok(Ok(c)) => super::chan::Chan::new(c, opts.token.as_ref()),
    };
    use super::hooks::SourceChoice;
    if opts.source != SourceChoice::Console {
        let opened = timeout(
            opts.connect_timeout,
            super::hooks::watch(channel.clone(), opts.max_agent_message_size),
        )
        .await;
        match opened {
            Err(_) => {
                return Err(ConnError::Timeout(
                    name.into(),
                    opts.connect_timeout.as_secs(),
                ));
            }
            Ok(Ok(stream)) => {
                let events = stream.map(|m| {
                    m.map(|g| {
                        let at = std::time::Instant::now();
                        Event::Groups(Box::new(super::hooks::convert(g, at)))
                    })
                });
                let _pages = AbortOnDrop(tokio::spawn(super::hooks::pages(
                    channel.clone(),
                    waits.clone(),
                    tx.clone(),
                    opts.max_agent_message_size,
                    opts.connect_timeout,
                )));
                return read_stream(events, &channel, name, opts, tx, backoff, waits)
                    .await
                    .map_err(ConnError::for_agent);
            }
            Ok(Err(status))
                if status.code() == tonic::Code::Unimplemented
                    && opts.source == SourceChoice::Auto => {}
            Ok(Err(status)) => {
                return Err(ConnError::from_status(name, &status, false).for_agent());
            }
        }
    }
    let mut client =
        InstrumentClient::new(channel.clone()).max_decoding_message_size(opts.max_message_size);
    let stream = match timeout(
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
    let events = stream.map(|m| {
        m.map(|msg| {
            let bytes = msg.encoded_len();
            Event::Update(Box::new(convert::update(msg, bytes)))
        })
    });
    // Whether another client paused the console (only watched: taskscope
    // never pauses a target's console). Ends with this connection.
    let _paused = AbortOnDrop(tokio::spawn(watch_state(client.clone(), tx.clone())));
    let _details = AbortOnDrop(tokio::spawn(watch_details(
        client.clone(),
        waits.clone(),
        tx.clone(),
    )));
    read_stream(events, &channel, name, opts, tx, backoff, waits).await
}

/// Streams the details of the task the view has open (`WatchTaskDetails`:
/// its poll-time and scheduled-time histograms), reopening the stream
/// when the view opens another task; nothing while none is open.
async fn watch_details(
    mut client: InstrumentClient<super::chan::Chan>,
    requests: Requests,
    tx: mpsc::Sender<Event>,
) {
    use console_api::instrument::TaskDetailsRequest;
    loop {
        let Some(task) = requests.details_of() else {
            requests.details_changed().await;
            continue;
        };
        let req = TaskDetailsRequest {
            id: Some(console_api::Id { id: task }),
        };
        let mut stream = match client.watch_task_details(req).await {
            Ok(r) => r.into_inner(),
            Err(_) => {
                // A task that ended, or a subscriber without details:
                // wait for the view to open another.
                requests.details_changed().await;
                continue;
            }
        };
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(Ok(d)) = msg else {
                        requests.details_changed().await;
                        break;
                    };
                    let d = convert::details(task, d);
                    if tx.send(Event::Details(Box::new(d))).await.is_err() {
                        return;
                    }
                }
                () = requests.details_changed() => break,
            }
        }
    }
}

/// Forwards the console's pause state (`WatchState`); silent on a
/// subscriber without it, or when the stream ends.
async fn watch_state(mut client: InstrumentClient<super::chan::Chan>, tx: mpsc::Sender<Event>) {
    use console_api::instrument::{StateRequest, Temporality};
    let Ok(resp) = client.watch_state(StateRequest {}).await else {
        return;
    };
    let mut stream = resp.into_inner();
    let mut last = None;
    while let Some(Ok(state)) = stream.next().await {
        let paused = state.temporality == Temporality::Paused as i32;
        if last != Some(paused) {
            last = Some(paused);
            if tx.send(Event::ConsolePaused(paused)).await.is_err() {
                return;
            }
        }
    }
}

/// Reads a stream of either source until it fails: announces it, starts
/// the agent task (captures) on its first message, and forwards each message
/// as an event. Ok(()) only when the receiver went away.
async fn read_stream(
    mut stream: impl Stream<Item = Result<Event, tonic::Status>> + Unpin,
    channel: &super::chan::Chan,
    name: &str,
    opts: &Options,
    tx: &mpsc::Sender<Event>,
    backoff: &mut Backoff,
    waits: &Requests,
) -> Result<(), ConnError> {
    // Stops the agent task when this stream ends.
    let mut _agent_task: Option<AbortOnDrop> = None;
    if tx.send(Event::StreamStarted).await.is_err() {
        return Ok(());
    }
    let mut announced = false;
    loop {
        let msg = match timeout(opts.stall_timeout, stream.next()).await {
            Err(_) => {
                return Err(ConnError::Broken(
                    name.into(),
                    format!("no update for {}s (stalled)", opts.stall_timeout.as_secs()),
                ));
            }
            Ok(Some(Err(status))) => {
                return Err(ConnError::from_status(name, &status, announced));
            }
            Ok(None) => {
                return Err(ConnError::Broken(
                    name.into(),
                    "the target closed the stream".into(),
                ));
            }
            Ok(Some(Ok(m))) => m,
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
                waits.clone(),
            ))));
        }
        if tx.send(msg).await.is_err() {
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
