//! The JSON Schemas of what taskscope writes, generated from the types that
//! write it (`taskscope schema NAME`); `assets/*.schema.json` are these,
//! checked by a test so that they cannot drift from the code.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// The documents taskscope writes as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Document {
    /// `snapshot` files (`.json`, `.json.gz`).
    Snapshot,
    /// `report --format json` and `watch --format json`.
    Report,
    /// `diff --format json`.
    Diff,
}

impl Document {
    pub const ALL: [Document; 3] = [Document::Snapshot, Document::Report, Document::Diff];

    /// The file under `assets/` that holds the published schema.
    pub fn asset(self) -> &'static str {
        match self {
            Document::Snapshot => "snapshot.schema.json",
            Document::Report => "report.schema.json",
            Document::Diff => "diff.schema.json",
        }
    }

    /// The schema, pretty-printed, with a final newline.
    pub fn schema(self) -> String {
        let value = match self {
            Document::Snapshot => generate::<crate::snapshot::format::Snapshot>("snapshot"),
            Document::Report => generate::<crate::report::build::Report>("report"),
            Document::Diff => generate::<crate::report::diff::DiffJson>("diff"),
        };
        let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
        out.push('\n');
        out
    }
}

fn generate<T: JsonSchema>(name: &str) -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert("$id".into(), format!("taskscope-{name}-v1").into());
    schema.to_value()
}
