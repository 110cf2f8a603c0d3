//! The core layers stay pure: `model` and `analysis` import no UI or
//! network crate, so every rule is testable with fabricated data (they may
//! use `taskscope_proto::names`, string rules shared with the agent).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn model_and_analysis_import_no_ui_or_network_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "ratatui",
        "crossterm",
        "tonic",
        "console_api",
        "prost",
        "tokio::net",
        "taskscope_proto",
        "taskscope_agent",
    ];
    let mut offenders = Vec::new();
    for layer in ["model", "analysis"] {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "no files under src/{layer}");
        for f in files {
            // One exception: `taskscope_proto::names`, pure string rules
            // (how a frame is named) the agent's profiles share; no wire
            // type, nothing of the network.
            let text = without_strings(&std::fs::read_to_string(&f).expect("read"))
                .replace("taskscope_proto::names::", "");
            for word in forbidden {
                if text.contains(&format!("{word}::")) || text.contains(&format!("use {word}")) {
                    offenders.push(format!("{} uses {word}", f.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The viewer talks to the agent through `taskscope-proto` only; the agent
/// and console-subscriber are linked for the built-in demo target alone
/// (the `demo` feature), so only `src/demo/` may name them.
#[test]
fn only_the_demo_links_the_agent_and_console_subscriber() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(root.join("demo")))
        .filter(|f| {
            let text = without_strings(&std::fs::read_to_string(f).expect("read"));
            [
                "taskscope_agent",
                "console_subscriber",
                "tracing_subscriber",
            ]
            .iter()
            .any(|c| text.contains(&format!("{c}::")) || text.contains(&format!("use {c}")))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
}

/// The source with the contents of string literals blanked (patterns that
/// name crates, e.g. frames matched in task dumps, are not imports).
fn without_strings(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in src.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                out.push(c);
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    out
}

#[test]
fn string_contents_do_not_count_as_imports() {
    assert_eq!(without_strings(r#"a("tokio::net::x") b"#), r#"a("") b"#);
    assert_eq!(
        without_strings(r#""a\"b" tokio::net::"#),
        r#""" tokio::net::"#
    );
}

/// The agent goes into other people's services: its dependency tree (from
/// Cargo.lock) must not pull in taskscope's terminal stack.
#[test]
fn the_agent_depends_on_no_terminal_crates() {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock");
    // name -> dependency names, from each [[package]] block.
    let mut deps: std::collections::HashMap<String, Vec<String>> = Default::default();
    for block in lock.split("[[package]]").skip(1) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .map(|n| n.trim_end_matches('"').to_string())
            .expect("package name");
        let list: Vec<String> = block
            .split("dependencies = [")
            .nth(1)
            .map(|rest| {
                rest.split(']')
                    .next()
                    .unwrap_or("")
                    .lines()
                    .filter_map(|l| l.trim().trim_end_matches(',').strip_prefix('"'))
                    .map(|d| {
                        d.trim_end_matches('"')
                            .split(' ')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec!["taskscope-agent".to_string()];
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    assert!(seen.contains("console-subscriber"), "{seen:?}");
    for banned in ["ratatui", "crossterm", "taskscope"] {
        assert!(!seen.contains(banned), "taskscope-agent pulls in {banned}");
    }
}
