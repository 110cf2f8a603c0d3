//! The capped decoders against prost's own: the same message where it is
//! within the caps, what is over them left out and counted, and no panic
//! on any bytes.

use super::*;
use proptest::prelude::*;
use prost::Message;

fn loc(file: &str) -> Option<proto::Loc> {
    Some(proto::Loc {
        file: file.into(),
        line: 7,
        column: 3,
    })
}

fn a_row(file: &str) -> proto::GroupRow {
    proto::GroupRow {
        location: loc(file),
        live: 5,
        running: 1,
        idle: 4,
        spawned: 9,
        terminated: 4,
        polls: 30,
        busy_ns: 1_000,
        oldest_created_unix_ns: 1_800_000_000_000_000_000,
        earliest_idle_unix_ns: 1_800_000_000_500_000_000,
        longest_poll_ns: 20,
        parents: vec![proto::ParentCount {
            location: loc("src/main.rs"),
            tasks: 5,
        }],
        unparented: 0,
        ages: vec![1, 2, 2],
        terminated_lifetime_ns: 400,
        reachable: 5,
        waits_held: 2,
        newest_wait_unix_ns: 1_800_000_001_000_000_000,
        lifetimes: vec![4],
        split: true,
        spawner: loc("src/fetch.rs"),
    }
}

#[test]
fn a_message_within_the_caps_reads_as_prost_reads_it() {
    let g = proto::Groups {
        now_unix_ns: 1_800_000_002_000_000_000,
        groups: vec![a_row("src/a.rs"), a_row("src/b.rs")],
        history: vec![proto::SiteHistory {
            location: loc("src/a.rs"),
            first_unix_sec: 1_799_999_990,
            spawned: vec![1, 2, 9],
            terminated: vec![0, 1, 4],
            split: true,
            spawner: loc("src/fetch.rs"),
        }],
        since_unix_ns: 1_799_999_980_000_000_000,
    };
    let mut cut = Capped::default();
    assert_eq!(groups(&g.encode_to_vec(), &mut cut).unwrap(), g);
    assert!(!cut.any());

    let d = proto::DumpReply {
        traces: vec![proto::Trace {
            leaves: vec![proto::Leaf {
                frames: vec![proto::Frame {
                    name: "tokio::net::TcpStream::read".into(),
                    file: "tokio-1.54.1/src/net/tcp/stream.rs".into(),
                    line: 9,
                }],
            }],
        }],
        tasks: vec![proto::TaskTrace {
            id: 4,
            trace: 0,
            location: 1,
            captured_unix_ns: 5,
            spawner: 1,
            split: true,
        }],
        resolve_ns: 2,
        taken_unix_ns: 3,
        locations: vec![proto::Loc::default()],
        unlisted: 6,
        round_ns: 7,
        agent_wakers: vec![4, 5],
    };
    assert_eq!(captures(&d.encode_to_vec(), &mut cut).unwrap(), d);
    let p = proto::TaskPage {
        tasks: vec![proto::TaskRow {
            id: 1,
            parent_id: 2,
            parent_location: loc("src/p.rs"),
            created_unix_ns: 3,
            polls: 4,
            busy_ns: 5,
            running_since_unix_ns: 6,
            idle_since_unix_ns: 7,
            reachable: true,
        }],
        next_after_id: 8,
    };
    assert_eq!(page(&p.encode_to_vec(), &mut cut).unwrap(), p);
    let i = proto::InfoReply {
        agent_version: "0.1.0".into(),
        dumps_supported: true,
        why_not: String::new(),
        min_interval_ms: 10,
        holds_wakers: true,
    };
    // What an older agent sent and the wire has since reserved (tag 5,
    // the windows of its whole-runtime dumps) is skipped, not kept.
    let mut old = i.encode_to_vec();
    let mut window = Vec::new();
    prost::encoding::int64::encode(1, &1, &mut window);
    prost::encoding::int64::encode(2, &2, &mut window);
    prost::encoding::bytes::encode(5, &window, &mut old);
    assert_eq!(info(&old, &mut cut).unwrap(), i);
    assert!(!cut.any());
}

#[test]
fn what_is_over_a_cap_is_left_out_and_counted() {
    let long = "x".repeat(2_000);
    let mut row = a_row(&long);
    row.parents = vec![row.parents[0].clone(); 20];
    row.ages = vec![1; 100];
    let g = proto::Groups {
        groups: vec![row; caps::MAX_GROUPS + 10],
        ..proto::Groups::default()
    };
    let mut cut = Capped::default();
    let got = groups(&g.encode_to_vec(), &mut cut).unwrap();
    assert_eq!(got.groups.len(), caps::MAX_GROUPS);
    let r = &got.groups[0];
    let file = &r.location.as_ref().unwrap().file;
    assert_eq!(file.len(), caps::MAX_PATH + '…'.len_utf8());
    assert_eq!(
        (r.parents.len(), r.ages.len()),
        (caps::MAX_PARENTS, caps::MAX_BUCKETS)
    );
    let n = caps::MAX_GROUPS as u64;
    assert_eq!(cut.groups, 10);
    assert_eq!(cut.strings, n);
    assert_eq!(cut.parents, n * 12);
    assert_eq!(cut.buckets, n * 60);
}

#[test]
fn a_flood_of_frames_keeps_the_innermost_within_the_budget() {
    let frames: Vec<proto::Frame> = (0..500)
        .map(|i| proto::Frame {
            name: format!("f{i}"),
            ..proto::Frame::default()
        })
        .collect();
    let trace = proto::Trace {
        leaves: vec![proto::Leaf { frames }; 20],
    };
    let d = proto::DumpReply {
        traces: vec![trace; 100],
        ..proto::DumpReply::default()
    };
    let mut cut = Capped::default();
    let got = captures(&d.encode_to_vec(), &mut cut).unwrap();
    let per_trace = caps::MAX_LEAVES * caps::MAX_FRAMES;
    assert_eq!(got.traces.len(), caps::MAX_DUMP_FRAMES / per_trace);
    let leaf = &got.traces[0].leaves[0];
    assert_eq!(leaf.frames.len(), caps::MAX_FRAMES);
    assert_eq!(leaf.frames.last().unwrap().name, "f499");
    assert_eq!(cut.traces, 100 - got.traces.len() as u64);
    assert!(cut.frames > 0);
}

#[test]
fn unpacked_repeated_numbers_are_read_too() {
    // A repeated uint64 sent one value per field, as proto2 does.
    let mut b = Vec::new();
    for n in [3u64, 4, 5] {
        prost::encoding::uint64::encode(14, &n, &mut b);
    }
    let mut cut = Capped::default();
    assert_eq!(row(&b, &mut cut).unwrap().ages, vec![3, 4, 5]);
}

#[test]
fn broken_messages_are_errors() {
    let mut cut = Capped::default();
    // A length-delimited field claiming more bytes than follow.
    assert!(groups(&[0x12, 0x40, 0x00], &mut cut).is_err());
    // A deprecated group.
    assert!(captures(&[0x0b], &mut cut).is_err());
    // A varint that never ends.
    assert!(page(&[0x10, 0xff, 0xff], &mut cut).is_err());
}

proptest! {
    #[test]
    fn any_bytes_decode_or_fail_without_panicking(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut cut = Capped::default();
        let _ = groups(&b, &mut cut);
        let _ = captures(&b, &mut cut);
        let _ = page(&b, &mut cut);
        let _ = info(&b, &mut cut);
    }
}
