//! Reading report files, and annotating one in place.
//!
//! Guarantees: a report of a newer `reportVersion` than this build understands is refused
//! with a message saying so, never misread; `annotate` holds an exclusive lock on a sibling
//! `.lock` file across read-modify-write and replaces the report atomically (write, then
//! rename), so concurrent annotations of one report each land and a reader never sees half a
//! file.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::model::{FollowUp, FollowUpStatus, REPORT_VERSION, Report};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a report: {0}")]
    Malformed(String),
    #[error(
        "written by a newer Disasterpiece (reportVersion {found}; this one reads up to {REPORT_VERSION}): upgrade to read it"
    )]
    Newer { found: u64 },
}

/// Reads one report, checking its version first.
pub fn load(path: &Path) -> Result<Report, LoadError> {
    let text = std::fs::read_to_string(path)?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Report, LoadError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| LoadError::Malformed(format!("invalid JSON: {e}")))?;
    match value.get("reportVersion").and_then(serde_json::Value::as_u64) {
        None => return Err(LoadError::Malformed("no `reportVersion`".into())),
        Some(v) if v > u64::from(REPORT_VERSION) => return Err(LoadError::Newer { found: v }),
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|e| LoadError::Malformed(e.to_string()))
}

/// The report files below `dir` (`*.json`), sorted, recursively.
pub fn find(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What the team adds after an exercise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotation {
    pub confidence_before: Option<u8>,
    pub confidence_after: Option<u8>,
    pub learned: Vec<String>,
    pub follow_ups: Vec<String>,
    /// The owner of the follow-ups added by this annotation.
    pub owner: Option<String>,
    /// Follow-ups (1-based, as listed) to mark done.
    pub done: Vec<usize>,
}

impl Annotation {
    /// Applies the annotation; an index that names no follow-up is an error and changes nothing.
    pub fn apply(&self, report: &mut Report) -> Result<(), String> {
        let count = report.follow_ups.len();
        if let Some(bad) = self.done.iter().find(|i| **i == 0 || **i > count) {
            return Err(format!(
                "there is no follow-up {bad}: the report has {count} (numbered from 1, as `report` lists them)"
            ));
        }
        if self.confidence_before.is_some() {
            report.confidence_before = self.confidence_before;
        }
        if self.confidence_after.is_some() {
            report.confidence_after = self.confidence_after;
        }
        report.learned.extend(self.learned.iter().cloned());
        for i in &self.done {
            report.follow_ups[i - 1].status = FollowUpStatus::Done;
        }
        report.follow_ups.extend(self.follow_ups.iter().map(|text| FollowUp {
            text: text.clone(),
            owner: self.owner.clone(),
            status: FollowUpStatus::Open,
        }));
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write: {0}")]
    Write(std::io::Error),
}

/// Annotates the report at `path` under an exclusive lock; returns the report as written.
pub fn annotate(path: &Path, annotation: &Annotation) -> Result<Report, AnnotateError> {
    let lock_path = sibling(path, "lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(AnnotateError::Write)?;
    lock.lock().map_err(AnnotateError::Write)?;
    let mut report = load(path)?;
    annotation.apply(&mut report).map_err(AnnotateError::Invalid)?;
    let text = serde_json::to_string_pretty(&report).map_err(|e| AnnotateError::Write(e.into()))?;
    let temporary = sibling(path, &format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, text + "\n").map_err(AnnotateError::Write)?;
    File::open(&temporary)
        .and_then(|f| f.sync_all())
        .map_err(AnnotateError::Write)?;
    std::fs::rename(&temporary, path).map_err(AnnotateError::Write)?;
    drop(lock);
    Ok(report)
}

/// `report.json` → `report.json.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}
