//! The core layers stay pure: `model` and `analysis` import no UI or
//! network crate, so every rule is testable with fabricated data.

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
    ];
    let mut offenders = Vec::new();
    for layer in ["model", "analysis"] {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "no files under src/{layer}");
        for f in files {
            let text = without_strings(&std::fs::read_to_string(&f).expect("read"));
            for word in forbidden {
                if text.contains(&format!("{word}::")) || text.contains(&format!("use {word}")) {
                    offenders.push(format!("{} uses {word}", f.display()));
                }
            }
        }
    }
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
