//! The committed JSON Schemas are generated from the types and must not go stale.

use std::process::Command;

use disasterpiece::scenario::Kind;

fn committed(name: &str) -> serde_json::Value {
    let path = format!("schemas/{name}.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn committed_schemas_match_the_types() {
    for (kind, name) in [(Kind::Scenario, "scenario"), (Kind::GameDay, "gameday")] {
        assert!(
            &committed(name) == kind.schema(),
            "schemas/{name}.schema.json is stale; regenerate it with\n  cargo run -- schema {name} > schemas/{name}.schema.json"
        );
    }
}

#[test]
fn the_committed_report_schema_matches_the_report_type() {
    assert!(
        &committed("report") == disasterpiece::report::model::schema(),
        "schemas/report.schema.json is stale; regenerate it with\n  cargo run -- schema report > schemas/report.schema.json"
    );
}

#[test]
fn the_schema_command_prints_the_committed_schema() {
    for name in ["scenario", "gameday", "report"] {
        let output = Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
            .args(["schema", name])
            .output()
            .expect("run disasterpiece");
        assert!(output.status.success());
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(printed, committed(name));
    }
}

#[test]
fn the_schema_describes_fields_for_editors_and_rejects_unknown_ones() {
    let schema = Kind::Scenario.schema();
    let spec = &schema["definitions"]["ScenarioSpec"];
    assert_eq!(spec["additionalProperties"], false);
    let duration = &spec["properties"]["duration"];
    assert_eq!(duration["format"], "duration");
    assert!(
        duration["description"]
            .as_str()
            .is_some_and(|d| d.contains("How long the faults hold"))
    );
    let required: Vec<&str> = spec["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for field in ["hypothesis", "target", "faults", "duration", "expect"] {
        assert!(required.contains(&field), "{field} not required: {required:?}");
    }
}
