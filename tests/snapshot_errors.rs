//! Bad snapshot files: one clear line naming the file and the problem,
//! exit 2, never a panic.

use crate::common;

use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

/// A directory of its own, removed when dropped.
fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A small valid snapshot, written by the real code path.
fn valid(path: &Path, target: &str) {
    use taskscope::model::update::{NewTask, TaskStats, Update};
    use taskscope::model::{State, Ts};
    let mut st = State::default();
    st.begin_stream();
    st.apply(Update {
        now: Some(Ts::from_secs(1_800_000_100)),
        has_metadata: true,
        tasks: vec![NewTask {
            id: 1,
            location: None,
            fields: vec![],
        }],
        task_stats: vec![(
            1,
            TaskStats {
                created_at: Some(Ts::from_secs(1_800_000_000)),
                ..TaskStats::default()
            },
        )],
        ..Update::default()
    });
    let meta = taskscope::snapshot::Meta {
        target: target.into(),
        taken_at_unix_ns: 1,
        watched: std::time::Duration::from_secs(1),
        window: std::time::Duration::from_secs(60),
    };
    let snap = taskscope::snapshot::take(&st, &meta).expect("snapshot");
    taskscope::snapshot::save(&snap, path).expect("save");
}

fn diff_error(bad: &Path, good: &Path) -> String {
    let out = Command::new(common::BIN)
        .args(["diff", "--format", "text"])
        .arg(good)
        .arg(bad)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err.trim_end().to_string()
}

#[test]
fn each_kind_of_bad_file_gets_its_own_message() {
    let d_dir = dir();
    let d = d_dir.path();
    let good = d.join("good.json");
    valid(&good, "127.0.0.1:6669");
    let text = std::fs::read_to_string(&good).expect("read");
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("empty.json", vec![], "empty file, not a snapshot".into()),
        (
            "truncated.json",
            text.as_bytes()[..text.len() / 2].to_vec(),
            "truncated".into(),
        ),
        (
            "garbage.json",
            b"this is not json".to_vec(),
            "not JSON".into(),
        ),
        (
            "other.json",
            br#"{"name": "package.json", "version": "1.0.0"}"#.to_vec(),
            "not a taskscope snapshot".into(),
        ),
        (
            "future.json",
            text.replace("\"version\":1", "\"version\":7").into_bytes(),
            "snapshot version 7 not supported (this taskscope reads version 1)".into(),
        ),
        (
            "broken.json",
            text.replacen("\"reason\":\"", "\"reason\":\"zz", 1)
                .into_bytes(),
            "invalid snapshot: unknown blocked-on reason \"zz".into(),
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = d.join(name);
        std::fs::write(&path, bytes).expect("write");
        let line = diff_error(&path, &good);
        assert!(line.starts_with("taskscope: error: "), "{line}");
        assert!(
            line.contains(&path.display().to_string()),
            "names the file: {line}"
        );
        assert!(line.contains(&expected), "{name}: {line}");
    }
    let missing = d.join("missing.json");
    assert!(diff_error(&missing, &good).ends_with("missing.json: no such file"));
}

#[test]
fn truncated_gzip_is_reported_as_truncated() {
    let d_dir = dir();
    let d = d_dir.path();
    let gz = d.join("full.json.gz");
    valid(&gz, "127.0.0.1:6669");
    let bytes = std::fs::read(&gz).expect("read");
    let cut = d.join("cut.json.gz");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
    let line = diff_error(&cut, &gz);
    assert!(line.contains("truncated"), "{line}");
}

#[test]
fn different_targets_are_compared_with_a_warning() {
    let d_dir = dir();
    let d = d_dir.path();
    let (a, b) = (d.join("a.json"), d.join("b.json"));
    valid(&a, "10.0.0.1:6669");
    valid(&b, "10.0.0.2:6669");
    let out = Command::new(common::BIN)
        .args(["diff", "--format", "text"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "taskscope: warning: comparing snapshots of different targets (10.0.0.1:6669 and 10.0.0.2:6669)"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no changes"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let r = taskscope::snapshot::file::parse(&bytes, Path::new("x.json"));
        prop_assert!(r.is_err());
    }

    #[test]
    fn mutated_snapshots_never_panic(pos in 0usize..10_000, byte in any::<u8>(), cut in any::<bool>()) {
        let d_dir = dir();
        let d = d_dir.path();
        let good = d.join("mut-src.json");
        if !good.exists() {
            valid(&good, "127.0.0.1:6669");
        }
        let mut bytes = std::fs::read(&good).expect("read");
        let at = pos % bytes.len();
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        // Either a clean error or a snapshot that resolves; never a panic.
        if let Ok(s) = taskscope::snapshot::file::parse(&bytes, Path::new("m.json")) {
            let _ = taskscope::snapshot::Loaded::new(s).map(|l| l.analyze(&Default::default()));
        }
    }
}
