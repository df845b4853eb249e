//! The simulator's container runtime: containers as real processes on this machine (opt-in,
//! `SimBuilder::run_containers`), so that what a fault script does is what a kubelet would see.
//!
//! A pod gets a sandbox (`runtime/pause.sh`): a process holding the pod's network namespace,
//! with an `eth0`. A container gets its own PID and mount namespaces (`runtime/setup.sh`):
//! `/proc` of its PID namespace, a `/dev` with a termination log bound to a host file, a private
//! `/tmp`, the working directory `/`; its command runs as its securityContext's user (or the
//! pod's; 0 when neither says, as an image's default user), with the capabilities a runtime
//! gives (containerd's defaults, less `drop`, plus `add`; a user other than 0 keeps none across
//! exec, as Kubernetes sets no ambient capabilities) and `no_new_privs` when
//! `allowPrivilegeEscalation: false`. An ephemeral container with a `targetContainerName` joins
//! its target's PID namespace, as Kubernetes shares it: its script signals the target's PID 1,
//! and dies with it. `exec` runs in the container's namespaces, as its user, with its env.
//!
//! The machine is the image: its programs (`sh`, `stress-ng`, `tc`, `ps`) are the image's. The
//! command is given after Kubernetes' `$(VAR)`/`$$` expansion. The target of a fault, a
//! container whose image the simulator does not have, is a stand-in: a shell as PID 1 that
//! exits 143 on TERM and 130 on INT and ignores what it does not handle, as an application's
//! main process would. Stand-ins start when something first needs them (a fault container that
//! targets them, an exec), not with every pod.
//!
//! Everything ends with the simulator: each process is killed when its pod goes, when the
//! simulator is dropped, and (through the parent-death signal) when its process dies.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use disasterpiece_common::clock::Clock;
use disasterpiece_common::expansion;

use super::store::text;

#[path = "runtime/probe.rs"]
mod probe;

const SETUP: &str = include_str!("runtime/setup.sh");
const PAUSE: &str = include_str!("runtime/pause.sh");

/// What a stand-in for an application's main process does: handle TERM and INT as an
/// application would, and wait.
const STAND_IN: &str = "trap 'exit 143' TERM; trap 'exit 130' INT; while :; do sleep 3600 & wait $!; done";

/// `PATH` of every container (the image's would be set by its config).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What containerd gives a container by default.
const DEFAULT_CAPABILITIES: [&str; 14] = [
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
];

/// A container (or sandbox) by pod UID and container name (`""` for the sandbox).
pub type Key = (String, String);

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not yet asked for.
    Absent,
    /// Its namespaces are being made.
    Starting,
    Running {
        started: DateTime<Utc>,
    },
    Exited(Exit),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub code: i32,
    /// Its termination message (or its log's end, by its policy).
    pub message: String,
    pub started: Option<DateTime<Utc>>,
    pub finished: DateTime<Utc>,
}

/// What a process's waiter saw.
struct Ended {
    code: i32,
    at: DateTime<Utc>,
}

struct Process {
    dir: PathBuf,
    /// The host PID the container's namespaces are entered through, once it is ready.
    pid: Option<u32>,
    started: Option<DateTime<Utc>>,
    identity: Identity,
    env: Vec<(String, String)>,
    fallback_to_logs: bool,
    kill: Option<oneshot::Sender<()>>,
    ended: Arc<Mutex<Option<Ended>>>,
    /// Why the runtime could not create it.
    failure: Option<String>,
}

/// Who a container's processes run as.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// setpriv's options: capabilities and no_new_privs.
    pub options: String,
}

/// A container to enter for exec.
pub struct Entry {
    pub pid: u32,
    pub identity: Identity,
    pub env: Vec<(String, String)>,
}

pub struct Runtime {
    root: PathBuf,
    clock: Clock,
    processes: HashMap<Key, Process>,
    /// The pods with processes: UID → (namespace, name).
    pods: HashMap<String, (String, String)>,
    /// Pods (namespace, name) with a container that ended since the world last looked.
    ended: Arc<Mutex<Vec<(String, String)>>>,
    /// Woken when a process ends.
    pub notify: Arc<Notify>,
}

impl Runtime {
    /// Checks that this machine can make containers (root, util-linux's unshare, nsenter and
    /// setpriv, mount namespaces), and makes the state directory.
    pub fn new(clock: Clock) -> Result<Runtime, String> {
        probe::can_make_containers()?;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "disasterpiece-sim-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot make {}: {e}", root.display()))?;
        std::fs::write(root.join("setup.sh"), SETUP).map_err(|e| e.to_string())?;
        std::fs::write(root.join("pause.sh"), PAUSE).map_err(|e| e.to_string())?;
        Ok(Runtime {
            root,
            clock,
            processes: HashMap::new(),
            pods: HashMap::new(),
            ended: Arc::default(),
            notify: Arc::default(),
        })
    }

    /// The pods with a container that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.ended.lock().expect("ended lock"))
    }

    /// Where container `name` of `pod` is; starts it (and what it needs) when `start`.
    pub fn container(&mut self, pod: &Value, name: &str, start: bool) -> State {
        let uid = text(pod, "/metadata/uid").to_owned();
        let key = (uid.clone(), name.to_owned());
        if let Some(state) = self.state(&key) {
            return state;
        }
        if !start {
            return State::Absent;
        }
        if let Err(message) = self.spawn(pod, name) {
            // What a runtime says when it cannot create a container (CreateContainerError).
            let now = self.clock.now();
            let process = self.processes.entry(key.clone()).or_insert_with(Process::failed);
            *process.ended.lock().expect("ended lock") = Some(Ended { code: 128, at: now });
            process.failure = Some(message);
        }
        self.state(&key).unwrap_or(State::Starting)
    }

    /// Forgets a container that ended, so that a restart starts it anew.
    pub fn remove(&mut self, uid: &str, name: &str) {
        if let Some(mut p) = self.processes.remove(&(uid.to_owned(), name.to_owned())) {
            p.stop();
        }
    }

    /// The pods with processes: (UID, namespace, name).
    pub fn pods(&self) -> Vec<(String, String, String)> {
        self.pods
            .iter()
            .map(|(uid, (ns, name))| (uid.clone(), ns.clone(), name.clone()))
            .collect()
    }

    /// Kills every process of a pod that is gone.
    pub fn forget_pod(&mut self, uid: &str) {
        self.pods.remove(uid);
        let keys: Vec<Key> = self.processes.keys().filter(|(u, _)| u == uid).cloned().collect();
        // Containers first, the sandbox last.
        for key in keys
            .iter()
            .filter(|(_, n)| !n.is_empty())
            .chain(keys.iter().filter(|(_, n)| n.is_empty()))
        {
            if let Some(mut p) = self.processes.remove(key) {
                p.stop();
            }
        }
    }

    /// Kills everything.
    pub fn shutdown(&mut self) {
        for (_, mut p) in self.processes.drain() {
            p.stop();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// What exec needs to enter a running container.
    pub fn entry(&mut self, pod: &Value, name: &str) -> Option<Entry> {
        let key = (text(pod, "/metadata/uid").to_owned(), name.to_owned());
        match self.state(&key)? {
            State::Running { .. } => {}
            _ => return None,
        }
        let p = self.processes.get(&key)?;
        Some(Entry {
            pid: p.pid?,
            identity: p.identity.clone(),
            env: p.env.clone(),
        })
    }

    /// The state of a known process, reading its PID file and its end.
    fn state(&mut self, key: &Key) -> Option<State> {
        let p = self.processes.get_mut(key)?;
        if p.pid.is_none()
            && let Some(pid) = std::fs::read_to_string(p.dir.join("pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        {
            p.pid = Some(pid);
            p.started = Some(self.clock.now());
        }
        if let Some(ended) = &*p.ended.lock().expect("ended lock") {
            let message = p.message(ended.code);
            return Some(State::Exited(Exit {
                code: ended.code,
                message,
                started: p.started,
                finished: ended.at,
            }));
        }
        Some(match p.started {
            Some(started) if p.pid.is_some() => State::Running { started },
            _ => State::Starting,
        })
    }

    /// The host PID of a running process, if it is running.
    fn pid(&mut self, key: &Key) -> Option<u32> {
        match self.state(key)? {
            State::Running { .. } => self.processes.get(key)?.pid,
            _ => None,
        }
    }

    fn spawn(&mut self, pod: &Value, name: &str) -> Result<(), String> {
        let uid = text(pod, "/metadata/uid").to_owned();
        // The sandbox first.
        let sandbox = (uid.clone(), String::new());
        if !self.processes.contains_key(&sandbox) {
            let dir = self.dir(&uid, "")?;
            let mut command = tokio::process::Command::new("setpriv");
            command
                .env_clear()
                .env("PATH", PATH)
                .args([
                    "--pdeathsig",
                    "KILL",
                    "--",
                    "unshare",
                    "--net",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "sh",
                ])
                .arg(self.root.join("pause.sh"))
                .arg(&dir);
            self.start(sandbox.clone(), pod, dir, command, Identity::root(), Vec::new(), false)?;
        }
        let Some(sandbox_pid) = self.pid(&sandbox) else {
            return Ok(()); // not ready: asked again on the next pass
        };
        let (container, ephemeral) = find(pod, name).ok_or_else(|| format!("no container {name}"))?;
        let target = container["targetContainerName"].as_str().filter(|_| ephemeral);
        // An ephemeral container sharing its target's PID namespace needs the target running.
        let target_pid = match target {
            Some(t) => {
                let state = self.container(pod, t, true);
                match state {
                    State::Running { .. } => self.pid(&(uid.clone(), t.to_owned())),
                    State::Exited(_) => return Err(format!("its target container {t} is not running")),
                    _ => return Ok(()),
                }
            }
            None => None,
        };
        if target.is_some() && target_pid.is_none() {
            return Ok(());
        }
        let identity = Identity::of(pod, &container);
        let env = environment(pod, &container);
        let words = command_of(&container, &env, ephemeral);
        let dir = self.dir(&uid, name)?;
        let mut command = tokio::process::Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--", "nsenter"]);
        match target_pid {
            // Enters the target's PID namespace (nsenter forks into it) and the pod's network.
            Some(pid) => {
                command
                    .args([
                        "--target",
                        &pid.to_string(),
                        "--pid",
                        "--net",
                        "--",
                        "unshare",
                        "--mount",
                    ])
                    .args(["--propagation", "private"]);
            }
            None => {
                command
                    .args([
                        "--target",
                        &sandbox_pid.to_string(),
                        "--net",
                        "--",
                        "unshare",
                        "--pid",
                        "--fork",
                    ])
                    .args(["--kill-child", "--mount", "--propagation", "private"]);
            }
        }
        command
            .arg("/bin/sh")
            .arg(self.root.join("setup.sh"))
            .arg(&dir)
            .arg(identity.uid.to_string())
            .arg(identity.gid.to_string())
            .arg(&identity.options)
            .args(&words);
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        let fallback = container["terminationMessagePolicy"] == "FallbackToLogsOnError";
        self.start((uid, name.to_owned()), pod, dir, command, identity, env, fallback)
    }

    /// A fresh state directory: the container's termination log (writable by any user, as the
    /// kubelet makes it), its log, its /dev mount point.
    fn dir(&self, uid: &str, name: &str) -> Result<PathBuf, String> {
        let dir = self
            .root
            .join(uid)
            .join(if name.is_empty() { "_sandbox" } else { name });
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dev")).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        let log = dir.join("termination-log");
        std::fs::write(&log, "").map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).map_err(|e| e.to_string())?;
        Ok(dir)
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        key: Key,
        pod: &Value,
        dir: PathBuf,
        mut command: tokio::process::Command,
        identity: Identity,
        env: Vec<(String, String)>,
        fallback_to_logs: bool,
    ) -> Result<(), String> {
        let log = std::fs::File::create(dir.join("log")).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        command.stdin(Stdio::null()).stdout(log).stderr(err).kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| format!("cannot start setpriv: {e}"))?;
        let (kill, killed) = oneshot::channel();
        let ended: Arc<Mutex<Option<Ended>>> = Arc::default();
        let pod_key = (
            text(pod, "/metadata/namespace").to_owned(),
            text(pod, "/metadata/name").to_owned(),
        );
        self.pods.insert(key.0.clone(), pod_key.clone());
        {
            let ended = ended.clone();
            let all = self.ended.clone();
            let notify = self.notify.clone();
            let clock = self.clock.clone();
            tokio::spawn(async move {
                let status = tokio::select! {
                    status = child.wait() => status.ok(),
                    _ = killed => { let _ = child.kill().await; child.wait().await.ok() }
                };
                use std::os::unix::process::ExitStatusExt;
                let code = status.map_or(137, |s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)));
                *ended.lock().expect("ended lock") = Some(Ended { code, at: clock.now() });
                all.lock().expect("ended lock").push(pod_key);
                notify.notify_one();
            });
        }
        self.processes.insert(
            key,
            Process {
                dir,
                pid: None,
                started: None,
                identity,
                env,
                fallback_to_logs,
                kill: Some(kill),
                ended,
                failure: None,
            },
        );
        Ok(())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Process {
    /// A container the runtime could not create.
    fn failed() -> Process {
        Process {
            dir: PathBuf::new(),
            pid: None,
            started: None,
            identity: Identity::root(),
            env: Vec::new(),
            fallback_to_logs: false,
            kill: None,
            ended: Arc::default(),
            failure: None,
        }
    }

    fn stop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }

    /// The termination message, as the kubelet reads it: the file (at most 4096 bytes), else,
    /// for `FallbackToLogsOnError` and a failure, the log's last 80 lines (at most 2048 bytes).
    fn message(&self, code: i32) -> String {
        if let Some(failure) = &self.failure {
            return failure.clone();
        }
        let read = |file: &str, limit: usize| {
            let bytes = std::fs::read(self.dir.join(file)).unwrap_or_default();
            let start = bytes.len().saturating_sub(limit);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        };
        let message = read("termination-log", 4096);
        if !message.is_empty() || !self.fallback_to_logs || code == 0 {
            return message;
        }
        let log = read("log", 2048);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }
}

impl Identity {
    fn root() -> Identity {
        Identity {
            uid: 0,
            gid: 0,
            options: "--bounding-set=-all,+".to_owned() + &DEFAULT_CAPABILITIES.join(",+"),
        }
    }

    /// The user, group and capabilities the container's securityContext asks for, the pod's
    /// securityContext filling what it leaves out.
    fn of(pod: &Value, container: &Value) -> Identity {
        let number = |field: &str| {
            container["securityContext"][field]
                .as_u64()
                .or_else(|| pod["spec"]["securityContext"][field].as_u64())
                .and_then(|n| u32::try_from(n).ok())
        };
        let list = |which: &str| -> Vec<String> {
            container["securityContext"]["capabilities"][which]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|c| c.trim_start_matches("CAP_").to_lowercase())
                .collect()
        };
        let drop = list("drop");
        let mut caps: Vec<String> = if drop.iter().any(|c| c == "all") {
            Vec::new()
        } else {
            DEFAULT_CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .filter(|c| !drop.contains(c))
                .collect()
        };
        for add in list("add") {
            if add == "all" || !add.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            if !caps.contains(&add) {
                caps.push(add);
            }
        }
        let mut options = String::from("--bounding-set=-all");
        for cap in &caps {
            options.push_str(",+");
            options.push_str(cap);
        }
        options.push_str(" --inh-caps=-all");
        if container["securityContext"]["allowPrivilegeEscalation"] == false {
            options.push_str(" --no-new-privs");
        }
        Identity {
            uid: number("runAsUser").unwrap_or(0),
            gid: number("runAsGroup").unwrap_or(0),
            options,
        }
    }
}

/// The container spec by name, and whether it is ephemeral.
fn find(pod: &Value, name: &str) -> Option<(Value, bool)> {
    for (list, ephemeral) in [("/spec/containers", false), ("/spec/ephemeralContainers", true)] {
        if let Some(c) = pod
            .pointer(list)
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        {
            return Some((c.clone(), ephemeral));
        }
    }
    None
}

/// The container's environment as the kubelet gives it: `HOSTNAME`, then each `env` entry
/// with `$(VAR)` expanded against the ones before it.
fn environment(pod: &Value, container: &Value) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), PATH.into()),
        ("HOSTNAME".into(), text(pod, "/metadata/name").to_owned()),
    ];
    for e in container["env"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (e["name"].as_str(), e["value"].as_str()) else {
            continue;
        };
        let known: HashMap<String, String> = env.iter().cloned().collect();
        let value = expansion::expand(value, |v| known.get(v).cloned());
        env.retain(|(k, _)| k != name);
        env.push((name.to_owned(), value));
    }
    env
}

/// The container's command and args after Kubernetes' expansion; a stand-in for a regular
/// container (the simulator has no images).
fn command_of(container: &Value, env: &[(String, String)], ephemeral: bool) -> Vec<String> {
    if !ephemeral {
        return vec!["/bin/sh".into(), "-c".into(), STAND_IN.into()];
    }
    let known: HashMap<String, String> = env.iter().cloned().collect();
    ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|w| w.as_str().map(|w| expansion::expand(w, |v| known.get(v).cloned())))
        .collect()
}

/// Runs `command` in a running container (`kubectl exec`): in its PID, mount and network
/// namespaces, from `/`, as its user, with its env. Returns the exit code and the output.
pub async fn exec(entry: &Entry, command: &[String], limit: Duration) -> (i32, Vec<u8>, Vec<u8>) {
    let mut nsenter = tokio::process::Command::new("nsenter");
    nsenter
        .args([
            "--target",
            &entry.pid.to_string(),
            "--pid",
            "--mount",
            "--net",
            "--wd=/",
            "--",
        ])
        .arg("setpriv")
        .arg("--reuid")
        .arg(entry.identity.uid.to_string())
        .arg("--regid")
        .arg(entry.identity.gid.to_string())
        .args(["--clear-groups", "--pdeathsig", "KILL"])
        .args(entry.identity.options.split_whitespace())
        .arg("--")
        .args(command)
        .env_clear()
        .envs(entry.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(limit, nsenter.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return (126, Vec::new(), format!("cannot run nsenter: {e}").into_bytes()),
        Err(_) => {
            return (
                137,
                Vec::new(),
                b"the command did not end in time and was killed".to_vec(),
            );
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let code = output
        .status
        .code()
        .unwrap_or_else(|| 128 + output.status.signal().unwrap_or(9));
    (code, output.stdout, output.stderr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_container_runs_as_its_security_context_says() {
        let pod = json!({"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000}}});
        let restricted = json!({"securityContext": {"runAsUser": 65534, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}}});
        let id = Identity::of(&pod, &restricted);
        assert_eq!((id.uid, id.gid), (65534, 3000));
        assert_eq!(id.options, "--bounding-set=-all --inh-caps=-all --no-new-privs");
        let net = json!({"securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}}});
        let id = Identity::of(&json!({}), &net);
        assert_eq!(id.uid, 0);
        assert!(id.options.contains("+kill") && id.options.ends_with(",+net_admin --inh-caps=-all"));
        let kill = json!({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["KILL", "bad;rm"]}}});
        assert_eq!(
            Identity::of(&json!({}), &kill).options,
            "--bounding-set=-all,+kill --inh-caps=-all"
        );
    }

    #[test]
    fn the_command_is_expanded_as_the_kubelet_expands_it() {
        let container = json!({"command": ["/bin/sh", "-c", "echo $$$$ $(GREETING) $(MISSING)"],
            "env": [{"name": "NAME", "value": "world"}, {"name": "GREETING", "value": "hello $(NAME)"}]});
        let env = environment(&json!({"metadata": {"name": "p"}}), &container);
        assert!(env.contains(&("GREETING".into(), "hello world".into())));
        assert_eq!(
            command_of(&container, &env, true),
            ["/bin/sh", "-c", "echo $$ hello world $(MISSING)"]
        );
    }
}
