//! The command probe: a local program's exit code (CLI runs only). No shell is involved.

use std::time::Instant;

use super::{Reading, Verdict};
use crate::scenario::model::CommandProbe;

pub async fn sample(probe: &CommandProbe) -> Reading {
    let Some((program, args)) = probe.run.split_first() else {
        return Reading::new(Verdict::Inconclusive, "no program to run");
    };
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let mut sample = match tokio::time::timeout(probe.timeout.as_std(), child).await {
        Err(_) => Reading::new(
            Verdict::Fail,
            format!("`{program}` ran past its {} timeout", probe.timeout),
        ),
        Ok(Err(e)) => Reading::new(Verdict::Inconclusive, format!("cannot run `{program}`: {e}")),
        Ok(Ok(output)) => match output.status.code() {
            Some(code) if code == probe.expect_exit_code => Reading::new(Verdict::Pass, format!("exit code {code}")),
            Some(code) => Reading::new(
                Verdict::Fail,
                format!("exit code {code}, expected {}", probe.expect_exit_code),
            ),
            None => Reading::new(Verdict::Fail, "killed by a signal".to_owned()),
        },
    };
    sample.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    sample
}
