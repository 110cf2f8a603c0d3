//! The published JSON Schemas are generated from the types that write the
//! documents; this fails when a type changed and `assets/` did not. To
//! update them: `TASKSCOPE_BLESS=1 cargo test --test tests schemas::`.

use taskscope::schemas::Document;

#[test]
fn published_schemas_are_generated_from_the_types() {
    let bless = std::env::var_os("TASKSCOPE_BLESS").is_some();
    let mut stale = Vec::new();
    for doc in Document::ALL {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(doc.asset());
        let generated = doc.schema();
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        if published != generated {
            if bless {
                std::fs::write(&path, &generated).expect("write schema");
            } else {
                stale.push(doc.asset());
            }
        }
        // Each compiles as a schema.
        let value: serde_json::Value = serde_json::from_str(&generated).expect("json");
        jsonschema::validator_for(&value).expect("schema compiles");
    }
    assert!(
        stale.is_empty(),
        "assets out of date: {stale:?} (TASKSCOPE_BLESS=1 cargo test --test tests schemas::)"
    );
}

#[test]
fn the_snapshot_schema_names_every_reason_and_refuses_others() {
    let schema: serde_json::Value =
        serde_json::from_str(&Document::Snapshot.schema()).expect("json");
    let reasons = &schema["$defs"]["Reason"]["enum"];
    let keys: Vec<&str> = reasons
        .as_array()
        .expect("an enum")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let all: Vec<&str> = taskscope::analysis::Reason::ALL
        .iter()
        .map(|r| r.key())
        .collect();
    assert_eq!(keys, all);
}
