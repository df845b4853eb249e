//! Reading report files, and annotating one in place.
//!
//! Guarantees: a report of a newer `reportVersion` than this build understands is refused
//! with a message saying so, never misread; `annotate` holds an exclusive lock on a sibling
//! `.lock` file across read-modify-write and replaces the report atomically (write, then
//! rename), so concurrent annotations of one report each land and a reader never sees half a
//! file.

use std::fs::OpenOptions;
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

/// The largest report file read: a report of a 24-hour window sampled every second holds a
/// few MiB; anything far larger is not one.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// The text of the regular file at `path` (a link is followed), at most `cap` bytes. A FIFO,
/// a device or a socket is refused before it is opened for reading (it could block or never
/// end), and a file that grows past `cap` while it is read is refused too.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, a device or a socket is not read)",
        ));
    }
    if meta.len() > cap {
        return Err(std::io::Error::other(format!(
            "{} bytes; at most {cap} are read",
            meta.len()
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)?.take(cap + 1).read_to_string(&mut text)?;
    if text.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "grew past {cap} bytes while it was read"
        )));
    }
    Ok(text)
}

/// Reads one report, checking its version first.
pub fn load(path: &Path) -> Result<Report, LoadError> {
    parse(&read_capped(path, MAX_REPORT_BYTES)?)
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

/// Reads what the review needs of one report (see [`super::review::Summary`]): the rest of
/// the file is skipped as it is read, not held. The version is checked as `load` checks it.
pub fn load_summary(path: &Path) -> Result<super::review::Summary, LoadError> {
    parse_summary(&read_capped(path, MAX_REPORT_BYTES)?)
}

/// As `load_summary`, from the text of a report.
pub fn parse_summary(text: &str) -> Result<super::review::Summary, LoadError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versioned {
        report_version: Option<u64>,
    }
    let version = serde_json::from_str::<Versioned>(text)
        .map_err(|e| LoadError::Malformed(format!("invalid JSON: {e}")))?
        .report_version;
    match version {
        None => Err(LoadError::Malformed("no `reportVersion`".into())),
        Some(v) if v > u64::from(REPORT_VERSION) => Err(LoadError::Newer { found: v }),
        Some(_) => serde_json::from_str(text).map_err(|e| LoadError::Malformed(e.to_string())),
    }
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
    /// For the follow-ups added: when each is due, the ticket that tracks it, and the
    /// scenario whose next confirming run proves it done.
    pub due: Option<chrono::NaiveDate>,
    pub ticket: Option<String>,
    pub proven_by: Option<String>,
    /// What time it is (the follow-ups added are opened, those marked done closed, then).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Annotation {
    /// Applies the annotation; one that is not valid (an index that names no follow-up, a
    /// ticket that is no web address, a scenario that is no name) is an error and changes
    /// nothing.
    pub fn apply(&self, report: &mut Report) -> Result<(), AnnotationError> {
        let count = report.follow_ups.len();
        if let Some(bad) = self.done.iter().find(|i| **i == 0 || **i > count) {
            return Err(AnnotationError::NoFollowUp { index: *bad, count });
        }
        if let Some(ticket) = &self.ticket
            && super::text::markdown_link(ticket).is_none()
        {
            return Err(AnnotationError::Ticket(ticket.clone()));
        }
        if let Some(scenario) = &self.proven_by
            && !disasterpiece_common::names::is_dns_subdomain(scenario)
        {
            return Err(AnnotationError::Scenario(scenario.clone()));
        }
        if self.confidence_before.is_some() {
            report.confidence_before = self.confidence_before;
        }
        if self.confidence_after.is_some() {
            report.confidence_after = self.confidence_after;
        }
        report.learned.extend(self.learned.iter().cloned());
        for i in &self.done {
            let follow_up = &mut report.follow_ups[i - 1];
            if follow_up.status != FollowUpStatus::Done {
                follow_up.status = FollowUpStatus::Done;
                follow_up.closed_at = self.at;
            }
        }
        report.follow_ups.extend(self.follow_ups.iter().map(|text| FollowUp {
            text: text.clone(),
            owner: self.owner.clone(),
            status: FollowUpStatus::Open,
            due: self.due,
            ticket: self.ticket.clone(),
            proven_by: self.proven_by.clone(),
            opened_at: self.at,
            closed_at: None,
        }));
        Ok(())
    }
}

/// What is wrong with an annotation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnnotationError {
    #[error("there is no follow-up {index}: the report has {count} (numbered from 1, as `report` lists them)")]
    NoFollowUp { index: usize, count: usize },
    #[error("the ticket `{0}` is not an http or https address: give its URL, e.g. https://tracker.example.com/OPS-12")]
    Ticket(String),
    #[error("`{0}` is not a scenario name: lowercase letters, digits, `-` and `.`, as in its metadata.name")]
    Scenario(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    #[error("cannot write: {0}")]
    Write(std::io::Error),
}

/// Annotates the report at `path` under an exclusive lock; returns the report as written.
///
/// A symlink is followed (the report it names is annotated; the link stays); the file keeps
/// its mode and every field this build does not know; a read-only file is refused. The new
/// text goes to a temporary file created exclusively (`O_EXCL`: never through a link planted at
/// its name) beside the report, then renamed over it.
pub fn annotate(path: &Path, annotation: &Annotation) -> Result<Report, AnnotateError> {
    let path = std::fs::canonicalize(path).map_err(LoadError::Io)?;
    let meta = std::fs::metadata(&path).map_err(LoadError::Io)?;
    if !meta.is_file() {
        return Err(AnnotateError::Invalid("not a regular file".into()));
    }
    if meta.permissions().readonly() {
        return Err(AnnotateError::Invalid(
            "the report is read-only, so it was not changed: make it writable (chmod u+w) to annotate it".into(),
        ));
    }
    let lock_path = sibling(&path, "lock");
    if std::fs::symlink_metadata(&lock_path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(AnnotateError::Invalid(format!(
            "{} is a symbolic link, not a lock file: remove it",
            lock_path.display()
        )));
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(AnnotateError::Write)?;
    lock.lock().map_err(AnnotateError::Write)?;
    let text = read_capped(&path, MAX_REPORT_BYTES).map_err(LoadError::Io)?;
    let mut report = parse(&text)?;
    annotation.apply(&mut report)?;
    let original: serde_json::Value = serde_json::from_str(&text).map_err(|e| LoadError::Malformed(e.to_string()))?;
    let mut value = serde_json::to_value(&report).map_err(|e| AnnotateError::Write(e.into()))?;
    keep_unknown(&original, &mut value);
    let text = serde_json::to_string_pretty(&value).map_err(|e| AnnotateError::Write(e.into()))? + "\n";
    // Unpredictable, so nobody can plant a link at it ahead of time (and O_EXCL refuses one).
    let temporary = sibling(
        &path,
        &format!("tmp-{}-{:016x}", std::process::id(), crate::random::u64()),
    );
    let written = write_new(&temporary, &text, meta.permissions()).and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(AnnotateError::Write(e));
    }
    drop(lock);
    Ok(report)
}

/// Creates `path` (failing if anything, a link included, is there), writes `text`, gives it
/// `permissions` and syncs it.
fn write_new(path: &Path, text: &str, permissions: std::fs::Permissions) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.set_permissions(permissions)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Puts back into `new` every field of `old` it lacks (written by a newer build, or by hand),
/// recursively; list items are matched by position.
fn keep_unknown(old: &serde_json::Value, new: &mut serde_json::Value) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                match new.get_mut(key) {
                    Some(present) => keep_unknown(value, present),
                    None => {
                        new.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (o, n) in old.iter().zip(new.iter_mut()) {
                keep_unknown(o, n);
            }
        }
        _ => {}
    }
}

/// `report.json` → `report.json.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}
