//! A hostile taskscope-agent of our own: the generated `taskscope.agent.v1`
//! `Tasks` server (a real tonic server on an ephemeral loopback port) that
//! speaks the hooks source's wire but sends what no real agent would, and a
//! `TaskDumps` service whose replies are written as raw bytes (`captures.rs`).
//!
//! Beside the liars runs one honest group, as a real agent would report it:
//! a site that spawns 3 tasks a second, none ending, since the service
//! started (`Lies::uptime` before the server, with the history of those
//! seconds in the first message; or as the viewer attaches). Against the
//! honest group alone the viewer flags it
//! (`the_honest_leak_alone_is_flagged`); the liars must not change that.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use taskscope_proto::tasks_server::{Tasks, TasksServer};
use taskscope_proto::{
    GroupRow, Groups, Loc, PageRequest, ParentCount, SiteHistory, TaskPage, TaskRow, WatchRequest,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Terminal escapes: a new window title, a clipboard write (OSC 52), a
/// cleared screen, red text.
pub const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{1b}[31m";
/// The honest site and the one that spawns its tasks.
pub const HONEST: (&str, u32, u32) = ("src/honest/server.rs", 88, 9);
pub const HONEST_PARENT: (&str, u32, u32) = ("src/honest/server.rs", 61, 5);
/// The honest site's tasks a second (none ends).
const RATE: f64 = 3.0;
const YEAR_NS: i64 = 365 * 86_400 * 1_000_000_000;

/// What the hostile agent sends.
#[derive(Clone, Debug)]
pub struct Lies {
    /// Liar groups in every message, beside the honest one.
    pub liars: usize,
    /// New locations in every message (else the same ones).
    pub fresh: bool,
    /// Bytes of each liar's file name, full of escapes.
    pub loc_len: usize,
    /// Spawning locations of each liar, and the bytes of their file names.
    pub parents: usize,
    pub parent_len: usize,
    /// How often a message is sent.
    pub every: Duration,
    /// The clock jumps back a year every third second.
    pub clock: bool,
    /// The first message's history: for this many liars, an hour of
    /// seconds at `u64::MAX` a year ago, beside the honest site's true one.
    pub history_sites: usize,
    pub captures: WaitsLie,
    /// Rows of every page; its `next_after_id` never ends.
    pub page_rows: usize,
    /// How long the honest service ran before the server started (its
    /// leak began with it; the first message's history holds those
    /// seconds). Zero: the leak begins as the viewer attaches.
    pub uptime: Duration,
}

/// What a request for waits gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WaitsLie {
    /// A small, well-formed reply (the honest group's tasks idle on a
    /// socket read).
    Small,
    /// `traces` traces of `frames` empty frames each, and tasks pointing
    /// at traces and locations that do not exist.
    Flood { traces: usize, frames: usize },
    /// No reply, ever (the call is held open).
    Never,
}

impl Lies {
    /// The honest group alone, as a real agent sends it.
    pub fn none() -> Lies {
        Lies {
            liars: 0,
            fresh: false,
            loc_len: 0,
            parents: 0,
            parent_len: 0,
            every: Duration::from_millis(500),
            clock: false,
            history_sites: 0,
            captures: WaitsLie::Small,
            page_rows: 10,
            uptime: Duration::from_secs(60),
        }
    }

    /// Every lie at once, sized to stay within the default message limit
    /// (a larger message is refused whole, which is another test).
    pub fn all() -> Lies {
        Lies {
            liars: 2_500,
            fresh: true,
            loc_len: 2_048,
            parents: 3,
            parent_len: 128,
            every: Duration::from_millis(500),
            clock: true,
            history_sites: 50,
            captures: WaitsLie::Flood {
                traces: 8_000,
                frames: 500,
            },
            page_rows: 20_000,
            uptime: Duration::from_secs(60),
        }
    }

    /// The issue's (#33): 5 000 liars every 500 ms with 2 KiB locations and
    /// 8 spawners of 2 KiB each (messages of about 100 MB), and a flood of
    /// 50 000 traces of 500 frames for waits.
    pub fn issue() -> Lies {
        Lies {
            liars: 5_000,
            parents: 8,
            parent_len: 2_048,
            captures: WaitsLie::Flood {
                traces: 50_000,
                frames: 500,
            },
            ..Lies::all()
        }
    }
}

pub(super) fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn loc((file, line, column): (&str, u32, u32)) -> Option<Loc> {
    Some(Loc {
        file: file.into(),
        line,
        column,
    })
}

/// The server's state: when the honest service started.
pub(super) struct Agent {
    pub(super) lies: Lies,
    since: i64,
}

impl Agent {
    /// The honest site's row at `now` (its `i`-th task was spawned at
    /// `since + i/3 s`, i from 1).
    fn honest(&self, now: i64) -> (GroupRow, u64) {
        let up = (now - self.since).max(0) as f64 / 1e9;
        let live = (up * RATE).floor() as u64;
        let mut ages = vec![0u64; 20];
        for i in 1..=live {
            let age = up - i as f64 / RATE;
            let b = if age < 1.0 {
                0
            } else {
                ((age.floor() as u64).ilog2() as usize + 1).min(19)
            };
            ages[b] += 1;
        }
        let first = self.since + (1e9 / RATE) as i64;
        let row = GroupRow {
            location: loc(HONEST),
            live,
            idle: live,
            spawned: live,
            polls: live,
            busy_ns: live * 20_000,
            oldest_created_unix_ns: if live > 0 { first } else { 0 },
            earliest_idle_unix_ns: if live > 0 { first } else { 0 },
            parents: vec![ParentCount {
                location: loc(HONEST_PARENT),
                tasks: live,
            }],
            ages,
            ..GroupRow::default()
        };
        (row, live)
    }

    /// A liar's location: `n` in a file name of `len` bytes.
    fn liar_loc(&self, n: u64, len: usize) -> Loc {
        let mut file = format!("src/{EVIL}/liar-{n}-");
        while file.len() < len {
            file.push_str(EVIL);
        }
        Loc {
            file,
            line: u32::MAX,
            column: n as u32,
        }
    }

    fn liar(&self, n: u64, flip: bool) -> GroupRow {
        GroupRow {
            location: Some(self.liar_loc(n, self.lies.loc_len)),
            live: u64::MAX,
            running: u64::MAX,
            idle: u64::MAX,
            spawned: u64::MAX,
            terminated: if flip { u64::MAX } else { 0 },
            polls: u64::MAX,
            busy_ns: u64::MAX,
            oldest_created_unix_ns: 1,
            earliest_idle_unix_ns: i64::MAX,
            longest_poll_ns: u64::MAX,
            parents: (0..self.lies.parents as u64)
                .map(|p| ParentCount {
                    location: Some(self.liar_loc(u64::MAX - p, self.lies.parent_len)),
                    tasks: u64::MAX,
                })
                .collect(),
            unparented: u64::MAX,
            ages: vec![u64::MAX; 64],
            terminated_lifetime_ns: u64::MAX,
            reachable: u64::MAX,
            waits_held: u64::MAX,
            newest_wait_unix_ns: i64::MAX,
            lifetimes: vec![u64::MAX; 64],
            // Half of them claim to be a generic executor's line, split by
            // a spawner as long and as hostile as their location.
            split: flip,
            spawner: flip.then(|| self.liar_loc(n ^ 1, self.lies.loc_len)),
        }
    }

    /// The `n`-th message.
    fn groups(&self, n: u64) -> Groups {
        let real = unix_ns(SystemTime::now());
        let (honest, _) = self.honest(real);
        let l = &self.lies;
        let base = if l.fresh { n * l.liars as u64 } else { 0 };
        let mut groups: Vec<GroupRow> = (0..l.liars as u64)
            .map(|i| self.liar(base + i, n % 2 == 1))
            .collect();
        // The honest row among the liars, not first.
        groups.insert(groups.len() / 2, honest);
        let third = (real - self.since) / 1_000_000_000 % 3 == 2;
        let now = if l.clock && third {
            real - YEAR_NS
        } else {
            real
        };
        let mut history = Vec::new();
        if n == 0 {
            let (first, last) = (self.since / 1_000_000_000 + 1, real / 1_000_000_000);
            let totals: Vec<u64> = (first..=last)
                .map(|s| ((s * 1_000_000_000 - self.since) as f64 / 1e9 * RATE) as u64)
                .collect();
            history.push(SiteHistory {
                location: loc(HONEST),
                first_unix_sec: first as u64,
                terminated: vec![0; totals.len()],
                spawned: totals,
                split: false,
                spawner: None,
            });
            if l.history_sites > 0 {
                history.extend((0..l.history_sites as u64).map(|i| SiteHistory {
                    location: Some(self.liar_loc(base + i, self.lies.loc_len)),
                    first_unix_sec: (real / 1_000_000_000 - 365 * 86_400) as u64,
                    spawned: vec![u64::MAX; 3_600],
                    terminated: (0..3_600).map(|s| s * 7_919 % 1_000).collect(),
                    split: true,
                    spawner: Some(self.liar_loc(base + i + 1, self.lies.loc_len)),
                }));
            }
        }
        Groups {
            now_unix_ns: now,
            groups,
            history,
            since_unix_ns: self.since,
        }
    }
}

type GroupsStream = Pin<Box<dyn Stream<Item = Result<Groups, Status>> + Send>>;

struct TasksSvc(Arc<Agent>);

#[tonic::async_trait]
impl Tasks for TasksSvc {
    type WatchStream = GroupsStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<GroupsStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let agent = self.0.clone();
        tokio::spawn(async move {
            for n in 0.. {
                let a = agent.clone();
                let Ok(msg) = tokio::task::spawn_blocking(move || a.groups(n)).await else {
                    return;
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
                tokio::time::sleep(agent.lies.every).await;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    /// Rows with ids counting down, never ending: the next page always
    /// starts again after the last id asked for.
    async fn page(&self, req: Request<PageRequest>) -> Result<Response<TaskPage>, Status> {
        let after = req.get_ref().after_id;
        let now = unix_ns(SystemTime::now());
        let tasks = (0..self.0.lies.page_rows as u64)
            .map(|i| TaskRow {
                id: u64::MAX - i,
                parent_id: u64::MAX,
                parent_location: Some(self.0.liar_loc(i, 256)),
                created_unix_ns: if i % 2 == 0 { i64::MAX } else { i64::MIN },
                polls: u64::MAX,
                busy_ns: u64::MAX,
                running_since_unix_ns: if i % 3 == 0 { now - YEAR_NS } else { 0 },
                idle_since_unix_ns: i64::MAX,
                reachable: true,
            })
            .collect();
        Ok(Response::new(TaskPage {
            tasks,
            next_after_id: after.wrapping_add(1).max(1),
        }))
    }
}

/// A running hostile agent; stops when dropped.
pub struct Served {
    pub addr: String,
    _rt: tokio::runtime::Runtime,
}

/// Serves `lies` on an ephemeral loopback port, on a runtime of its own.
pub fn serve(lies: Lies) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let since = unix_ns(SystemTime::now() - lies.uptime);
    let agent = Arc::new(Agent { lies, since });
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(
                TasksServer::new(TasksSvc(agent.clone())).max_encoding_message_size(usize::MAX),
            )
            .add_service(super::waits::Dumps(agent))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Served { addr, _rt: rt }
}

/// Serves `TASKSCOPE_HOSTILE=all|issue|none` for measurements by hand
/// (PERFORMANCE.md), the honest service up `TASKSCOPE_HOSTILE_UPTIME`
/// seconds (default 60), without the lies `TASKSCOPE_HOSTILE_WITHOUT`
/// names (`clock,history,liars,fresh`): prints `hostile=ADDR` and serves for
/// `TASKSCOPE_HOSTILE_SECS` (default 120).
#[test]
#[ignore = "a server for measurements by hand"]
fn serve_by_hand() {
    let mut lies = match std::env::var("TASKSCOPE_HOSTILE").as_deref() {
        Ok("issue") => Lies::issue(),
        Ok("none") => Lies::none(),
        _ => Lies::all(),
    };
    if let Some(s) = std::env::var("TASKSCOPE_HOSTILE_UPTIME")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        lies.uptime = Duration::from_secs(s);
    }
    // One lie at a time left out, to tell which one did what.
    for without in std::env::var("TASKSCOPE_HOSTILE_WITHOUT")
        .unwrap_or_default()
        .split(',')
    {
        match without {
            "clock" => lies.clock = false,
            "history" => lies.history_sites = 0,
            "liars" => lies.liars = 0,
            "fresh" => lies.fresh = false,
            _ => {}
        }
    }
    let secs = std::env::var("TASKSCOPE_HOSTILE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let served = serve(lies);
    println!("hostile={}", served.addr);
    std::thread::sleep(Duration::from_secs(secs));
}

/// The honest site as the viewer names it.
pub fn honest_location() -> String {
    format!("{}:{}:{}", HONEST.0, HONEST.1, HONEST.2)
}
