//! The wire contract is `proto/taskscope/agent/v1/agent.proto`, and the
//! part of pprof's format a task profile writes is `proto/pprof/
//! profile.proto`; the Rust code generated from them is committed
//! (`src/generated/`), so that neither the agent's users nor the viewer's
//! builds need `protoc`. This test generates the code again from the
//! `.proto`s (with `protoc` and tonic-prost-build) and fails when it differs
//! from the committed files. To update them after changing a `.proto`:
//! `TASKSCOPE_BLESS=1 cargo test -p taskscope-proto --test bootstrap`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each `.proto` and the file its generated code is committed in.
const PROTOS: [(&str, &str, &str); 2] = [
    (
        "proto/taskscope/agent/v1/agent.proto",
        "taskscope.agent.v1.rs",
        "src/generated/taskscope.agent.v1.rs",
    ),
    (
        "proto/pprof/profile.proto",
        "perftools.profiles.rs",
        "src/generated/perftools.profiles.rs",
    ),
];
const BLESS: &str = "TASKSCOPE_BLESS=1 cargo test -p taskscope-proto --test bootstrap";

#[test]
#[ignore = "end-to-end tier (needs protoc): scripts/test.sh runs it"]
fn generated_code_is_the_protos() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let protoc = protoc();
    let out = scratch_dir();
    let built = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Whoever serves or connects brings tonic's transport: the proto
        // crate needs none.
        .build_transport(false)
        .emit_rerun_if_changed(false)
        // Distinct traces are found by hashing them. prost-build derives
        // Eq and Hash (and Copy) by itself only for messages without
        // message fields (`Frame`, `Loc`).
        .type_attribute(".taskscope.agent.v1.Trace", "#[derive(Eq, Hash)]")
        .type_attribute(".taskscope.agent.v1.Leaf", "#[derive(Eq, Hash)]")
        .out_dir(&out)
        .compile_protos(
            &PROTOS.map(|(proto, _, _)| root.join(proto)),
            &[root.join("proto")],
        );
    if let Err(e) = built {
        panic!("the .protos did not compile with {}: {e}", protoc.display());
    }
    let mut stale = Vec::new();
    for (proto, written, committed) in PROTOS {
        let generated = std::fs::read_to_string(out.join(written))
            .unwrap_or_else(|e| panic!("tonic-prost-build wrote no {written}: {e}"));
        let committed_path = root.join(committed);
        let current = std::fs::read_to_string(&committed_path).unwrap_or_default();
        if current == generated {
            continue;
        }
        if std::env::var_os("TASKSCOPE_BLESS").is_some() {
            std::fs::write(&committed_path, &generated)
                .unwrap_or_else(|e| panic!("writing {}: {e}", committed_path.display()));
            continue;
        }
        let line = first_difference(&current, &generated);
        stale.push(format!(
            "{committed} is not what {proto} generates (first difference at line {line})"
        ));
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        stale.is_empty(),
        "{}; regenerate: {BLESS}",
        stale.join("; ")
    );
}

/// The `protoc` prost-build will run (`PROTOC`, else the one on `PATH`),
/// or a one-line reason to fail: without it this test checks nothing.
fn protoc() -> PathBuf {
    let protoc = std::env::var_os("PROTOC").map_or_else(|| PathBuf::from("protoc"), PathBuf::from);
    match Command::new(&protoc).arg("--version").output() {
        Ok(out) if out.status.success() => protoc,
        Ok(out) => panic!(
            "`{} --version` failed ({}): the bootstrap test needs protoc",
            protoc.display(),
            out.status
        ),
        Err(e) => panic!(
            "protoc not found ({}: {e}): install protobuf-compiler (bash scripts/test.sh does) or set PROTOC",
            protoc.display()
        ),
    }
}

/// A fresh directory under cargo's scratch space for integration tests.
fn scratch_dir() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bootstrap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The 1-based number of the first line where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> usize {
    let mut a_lines = a.lines();
    let mut b_lines = b.lines();
    let mut n = 1;
    loop {
        match (a_lines.next(), b_lines.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return n,
            _ => return n,
        }
    }
}
