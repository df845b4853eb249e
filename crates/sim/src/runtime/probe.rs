//! Whether this machine can make the simulator's containers: root (or the capabilities to make
//! namespaces and mount), and util-linux's unshare, nsenter and setpriv. Shared by the runtime
//! and the build script, which marks the tests that need it ignored elsewhere.

/// `Ok` when it can; else why not, in the tools' words.
pub fn can_make_containers() -> Result<(), String> {
    let probe = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--net",
            "--propagation",
            "private",
        ])
        .args([
            "sh",
            "-c",
            "command -v nsenter >/dev/null && command -v setpriv >/dev/null && mount -t tmpfs tmpfs /mnt",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err(format!(
            "this machine cannot make containers (it needs root, and util-linux's unshare, nsenter and setpriv): {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ))
    }
}
