//! `disasterpiece demo`: on a machine with nothing but the binary, three exercises against
//! the simulated shop, two hypotheses confirmed and one refuted, three reports (JSON,
//! Markdown and HTML).

use std::path::Path;

#[test]
fn the_demo_runs_three_exercises_and_writes_their_reports() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // Run from an empty directory: the demo needs no file of the repository.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_disasterpiece"))
        .args(["demo", "--reports", "out"])
        .current_dir(&dir)
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join("out"))
        .expect("reports")
        .map(|e| e.expect("entry").path())
        .collect();
    // Each report is there as JSON, Markdown and HTML.
    for extension in ["json", "md", "html"] {
        let count = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == extension))
            .count();
        assert_eq!(count, 3, "{extension}: {files:?}");
    }
    let html = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "html"))
        .expect("html");
    assert!(
        std::fs::read_to_string(html)
            .expect("read")
            .contains("<svg id=\"timeline\"")
    );
    let mut outcomes: Vec<(String, String)> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
            (
                report["scenario"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                report["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("demo-checkout-partition".to_owned(), "refuted".to_owned()),
            ("demo-checkout-pod-loss".to_owned(), "confirmed".to_owned()),
            ("demo-frontend-scale-down".to_owned(), "confirmed".to_owned()),
        ]
    );
    assert!(stdout.contains("REFUTED      users see no errors"), "{stdout}");
}
