//! Renderings of an analysis for people and machines outside the TUI.

pub mod build;
pub mod diff;
pub mod html;
pub mod md;
pub mod plain;
pub mod pprof;
pub mod schema;

use std::path::Path;

/// Report file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Html,
}

impl Format {
    /// From a file name's extension (`.md`, `.json`, `.html`/`.htm`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Md),
            "json" => Some(Format::Json),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }

    pub fn render(self, r: &build::Report) -> String {
        match self {
            Format::Md => md::render(r),
            Format::Json => build::to_json(r),
            Format::Html => html::render(r),
        }
    }
}

/// Writes to a file atomically, or to stdout for `-`.
pub fn write_out(path: &Path, content: &str) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(content.as_bytes())?;
        return out.flush();
    }
    crate::atomic_file::write(path, content.as_bytes())
}
