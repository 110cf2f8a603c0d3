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
            let text = std::fs::read_to_string(&f).expect("read");
            for word in forbidden {
                if text.contains(&format!("{word}::")) || text.contains(&format!("use {word}")) {
                    offenders.push(format!("{} uses {word}", f.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}
