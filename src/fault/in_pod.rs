//! The in-pod faults: networkDelay, networkLoss, cpuStress, memoryStress and containerKill.
//! Each adds an ephemeral container to the target pod whose own script applies the fault and
//! removes it when `duration` ends, so the fault ends even if Disasterpiece dies.
//!
//! Expected flow: `prepare` builds the container (image, capabilities, script, parameters as
//! `DISASTERPIECE_*` environment variables); `apply` adds it through the `ephemeralcontainers`
//! subresource and waits until it runs (or, for containerKill, until the target restarted);
//! `stop` sends TERM to the script (pods/exec `kill -TERM 1`), whose trap removes the fault,
//! then waits until the container has ended and reads how.
//! Guarantees: the script exits 0 only once its effect is gone (for netem: no netem qdisc left
//! on the device), 3 when it could not apply the fault (nothing left behind), 4 when removing
//! it failed; `stop` succeeds only on 0 or 3 (or, for stress, any end: its processes die with
//! the container). Caveats: a netem qdisc outlives a script killed by SIGKILL (only the node
//! can do that); the report then shows a revert failure saying how to remove it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Action, Context, FaultError, Outcome, Prepared, Undo, namespace_of};
use crate::blast_radius::Candidate;
use crate::scenario::model::{
    ContainerKill, CpuStress, Destination, FaultKind, MemoryStress, NetworkDelay, NetworkLoss,
};
use crate::scenario::validate::quantity_bytes;

/// The image of fault containers unless the scenario or `--fault-image` names another: it has
/// `sh`, `tc` (iproute2) and `kill`; the stress faults use `stress-ng` when an image has it and
/// busybox tools otherwise.
pub const DEFAULT_IMAGE: &str = "docker.io/nicolaka/netshoot:v0.13";

/// The network device netem shapes.
const DEVICE: &str = "eth0";

/// How long `apply` waits for the container to start (image pulls take time).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long `stop` waits for the container to end after TERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the in-pod faults of one exercise share.
#[derive(Debug, Clone)]
pub struct Settings {
    pub image: String,
    /// How long each fault container lasts before it ends on its own.
    pub duration: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            image: DEFAULT_IMAGE.to_owned(),
            duration: Duration::from_secs(60),
        }
    }
}

/// The image fault containers use: the scenario's, else the global setting, else the default.
pub fn image(scenario: Option<&str>, global: Option<&str>) -> String {
    scenario.or(global).unwrap_or(DEFAULT_IMAGE).to_owned()
}

/// The ephemeral container for `fault` on `target`, and how it is stopped.
pub fn prepare(ctx: &Context, fault: FaultKind<'_>, target: &Candidate) -> Result<Prepared, FaultError> {
    let namespace = namespace_of(target);
    let settings = &ctx.in_pod;
    let seconds = settings.duration.as_secs().max(1);
    let (wire, short) = match fault {
        FaultKind::NetworkDelay(_) => ("networkDelay", "delay"),
        FaultKind::NetworkLoss(_) => ("networkLoss", "loss"),
        FaultKind::CpuStress(_) => ("cpuStress", "cpu"),
        FaultKind::MemoryStress(_) => ("memoryStress", "memory"),
        FaultKind::ContainerKill(_) => ("containerKill", "kill"),
        _ => return Err(FaultError::Refused(format!("{fault:?} is not an in-pod fault"))),
    };
    let mut env = vec![
        ("DISASTERPIECE_FAULT", wire.to_owned()),
        ("DISASTERPIECE_EXERCISE", ctx.exercise.clone()),
        (
            "DISASTERPIECE_DURATION",
            crate::scenario::Duration::from(Duration::from_secs(seconds)).to_string(),
        ),
        ("DISASTERPIECE_SECONDS", seconds.to_string()),
        // The end of the exercise's window (Unix seconds): a container that starts late, after
        // a slow image pull, runs only what is left of it, and not at all once it has passed.
        // Rounded up to the second the scripts read (`date +%s`): cut down, a 1 s fault
        // prepared at X.9 s would have had 0.1 s, and often none.
        (ENV_NOT_AFTER, {
            let end = ctx.clock.now() + chrono::Duration::seconds(seconds as i64);
            (end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0)).to_string()
        }),
    ];
    let (body, effect, security, target_container) = match fault {
        FaultKind::NetworkDelay(p) => {
            let netem = delay_netem(p);
            env.extend(netem_env(&netem, p.destination.as_ref()));
            env.push(("DISASTERPIECE_LATENCY", p.latency.to_string()));
            if let Some(jitter) = p.jitter {
                env.push(("DISASTERPIECE_JITTER", jitter.to_string()));
            }
            (
                NETEM_SCRIPT,
                describe_netem(&netem, p.destination.as_ref()),
                net_admin(),
                None,
            )
        }
        FaultKind::NetworkLoss(p) => {
            let netem = loss_netem(p);
            env.extend(netem_env(&netem, p.destination.as_ref()));
            env.push(("DISASTERPIECE_LOSS_PERCENT", p.percent.to_string()));
            (
                NETEM_SCRIPT,
                describe_netem(&netem, p.destination.as_ref()),
                net_admin(),
                None,
            )
        }
        FaultKind::CpuStress(p) => {
            env.extend(cpu_env(p));
            (
                CPU_SCRIPT,
                format!("load {} CPU worker(s) at {}%", p.workers, p.load),
                unprivileged(),
                None,
            )
        }
        FaultKind::MemoryStress(p) => {
            let Some(bytes) = quantity_bytes(&p.size) else {
                return Err(FaultError::Refused(format!(
                    "memoryStress: `{}` is not a quantity",
                    p.size
                )));
            };
            env.extend(memory_env(p, bytes));
            let ramp = p.ramp.map_or(String::new(), |r| format!(", reached over {r}"));
            (
                MEMORY_SCRIPT,
                format!("hold {} of memory{ramp}", p.size),
                unprivileged(),
                None,
            )
        }
        FaultKind::ContainerKill(p) => {
            env.extend(kill_env(p));
            (
                KILL_SCRIPT,
                format!(
                    "send SIG{:?} to the main process of container {}",
                    p.signal, p.container
                ),
                json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["KILL"]}}),
                Some(p.container.clone()),
            )
        }
        _ => unreachable!("matched above"),
    };
    // Unique per exercise, pod and fault (its parameters included): a re-run, or two faults of
    // one kind on one pod, never meets a name already in the pod's spec (ephemeral containers
    // stay listed after they end, and the API server refuses to change one). The readable part
    // says which exercise added it, as its DISASTERPIECE_EXERCISE does.
    let tag = std::iter::once(format!("{}/{}/{}/{wire}", ctx.exercise, namespace, target.name))
        .chain(
            env.iter()
                .filter(|(k, _)| *k != ENV_NOT_AFTER)
                .map(|(k, v)| format!("{k}={v}")),
        )
        .collect::<Vec<_>>()
        .join("\n");
    let name = disasterpiece_common::names::label_with_hash(&format!("dp-{short}-{}", ctx.exercise), &tag);
    let mut container = json!({
        "name": name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": command(wire, body),
        "env": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if let Some(target_container) = &target_container {
        container["targetContainerName"] = json!(target_container);
    }
    let ends = ctx.clock.now() + chrono::Duration::seconds(seconds as i64);
    let undo = if target_container.is_some() {
        vec![Undo::Nothing {
            why: "the kubelet restarts the container; the fault container ends once it has signalled".into(),
        }]
    } else {
        vec![Undo::StopInPod {
            namespace: namespace.clone(),
            pod: target.name.clone(),
            container: name.clone(),
            fault: wire.to_owned(),
            ends_at: ends,
        }]
    };
    Ok(Prepared {
        action: Action::InPod {
            namespace,
            pod: target.name.clone(),
            fault: wire.to_owned(),
            effect: format!("{effect} for {}", crate::scenario::Duration::from(settings.duration)),
            container,
        },
        undo,
    })
}

fn net_admin() -> Value {
    // tc needs NET_ADMIN, and a process that is not root gets no added capability.
    json!({"runAsUser": 0, "runAsNonRoot": false, "capabilities": {"add": ["NET_ADMIN"]}})
}

/// What PodSecurity `restricted` accepts: the stress faults need no privilege.
fn unprivileged() -> Value {
    json!({
        "runAsUser": 65534, "runAsNonRoot": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn millis(d: crate::scenario::Duration) -> String {
    format!("{}ms", d.as_std().as_millis())
}

fn delay_netem(p: &NetworkDelay) -> String {
    let mut netem = format!("delay {}", millis(p.latency));
    if let Some(jitter) = p.jitter {
        netem.push_str(&format!(" {}", millis(jitter)));
        if let Some(c) = p.correlation {
            netem.push_str(&format!(" {c}%"));
        }
    }
    netem
}

fn loss_netem(p: &NetworkLoss) -> String {
    let mut netem = format!("loss {}%", p.percent);
    if let Some(c) = p.correlation {
        netem.push_str(&format!(" {c}%"));
    }
    netem
}

fn netem_env(netem: &str, destination: Option<&Destination>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DISASTERPIECE_NETEM", netem.to_owned()),
        ("DISASTERPIECE_DEVICE", DEVICE.to_owned()),
    ];
    if let Some(d) = destination {
        if let Some(cidr) = &d.cidr {
            env.push(("DISASTERPIECE_CIDR", cidr.clone()));
        }
        if let Some(port) = d.port {
            env.push(("DISASTERPIECE_PORT", port.to_string()));
        }
    }
    env
}

fn describe_netem(netem: &str, destination: Option<&Destination>) -> String {
    let to = match destination {
        Some(Destination {
            cidr: Some(c),
            port: Some(p),
        }) => format!(" to {c} port {p}"),
        Some(Destination { cidr: Some(c), .. }) => format!(" to {c}"),
        Some(Destination { port: Some(p), .. }) => format!(" to port {p}"),
        _ => String::new(),
    };
    format!("tc netem {netem} on {DEVICE}{to}")
}

fn cpu_env(p: &CpuStress) -> Vec<(&'static str, String)> {
    // Without stress-ng, each busy worker runs `on` tenths of each second and rests the others.
    let on = (p.load as f64 / 100.0 * 0.1).max(0.001);
    vec![
        ("DISASTERPIECE_CPU_WORKERS", p.workers.to_string()),
        ("DISASTERPIECE_CPU_LOAD", p.load.to_string()),
        ("DISASTERPIECE_CPU_ON", format!("{on:.3}")),
        ("DISASTERPIECE_CPU_OFF", format!("{:.3}", 0.1 - on)),
    ]
}

fn memory_env(p: &MemoryStress, bytes: u64) -> Vec<(&'static str, String)> {
    // Up to 10 steps of at least a second each over the ramp (a step of 0.2 s would be
    // rounded up to 1 s by `sleep` and stretch a 2 s ramp to 9 s).
    let ramp = p.ramp.map_or(0, |r| r.as_std().as_secs());
    let steps = ramp.clamp(1, 10);
    let pause = ramp / steps;
    vec![
        ("DISASTERPIECE_MEMORY", p.size.clone()),
        ("DISASTERPIECE_MEMORY_BYTES", bytes.to_string()),
        ("DISASTERPIECE_MEMORY_STEPS", steps.to_string()),
        ("DISASTERPIECE_MEMORY_CHUNK", (bytes / steps).max(1).to_string()),
        ("DISASTERPIECE_MEMORY_PAUSE", pause.to_string()),
    ]
}

fn kill_env(p: &ContainerKill) -> Vec<(&'static str, String)> {
    vec![
        ("DISASTERPIECE_SIGNAL", format!("{:?}", p.signal)),
        ("DISASTERPIECE_TARGET", p.container.clone()),
    ]
}

/// Where every script writes its PID, so revert signals the script and nothing else (in a pod
/// that shares one process namespace, PID 1 is the pause container).
const PID_FILE: &str = "/tmp/disasterpiece.pid";

/// Every script starts with `say`, which writes the termination message the revert reads, and
/// writes its PID to [`PID_FILE`].
const SAY: &str = include_str!("scripts/say.sh");

/// The environment variable holding the end of the exercise's window, in Unix seconds.
pub const ENV_NOT_AFTER: &str = "DISASTERPIECE_NOT_AFTER";

/// Before a stress body: the trap that stops its processes (they die with the container in
/// any case).
const STRESS_HEAD: &str = include_str!("scripts/stress_head.sh");

/// After a stress body: hold for the duration, interruptible by the trap.
const STRESS_TAIL: &str = include_str!("scripts/stress_tail.sh");

/// The container's command: the script, its every `$` written `$$` so that Kubernetes'
/// expansion of `$(VAR)` and `$$` in a command gives the shell the script as written (the
/// script's `echo $$` wrote a literal `$` to the PID file, and no revert could signal it).
fn command(fault: &str, body: &str) -> Value {
    json!([
        "/bin/sh",
        "-c",
        disasterpiece_common::expansion::escape(&script(fault, body))
    ])
}

/// The whole script of a fault.
fn script(fault: &str, body: &str) -> String {
    match fault {
        "cpuStress" | "memoryStress" => format!("{SAY}{STRESS_HEAD}{body}{STRESS_TAIL}"),
        _ => format!("{SAY}{body}"),
    }
}

/// netem on the pod's device, removed by the trap on TERM/INT/HUP and when the duration ends.
/// With a destination, a 4-band prio qdisc keeps ordinary traffic in bands 1-3 (the default
/// priomap never uses band 4) and a u32 filter sends the matching packets to netem on band 4.
const NETEM_SCRIPT: &str = include_str!("scripts/netem.sh");

/// Busy workers: stress-ng when the image has it, else shell loops paused and resumed to the
/// asked load.
const CPU_SCRIPT: &str = include_str!("scripts/cpu.sh");

/// Memory held, in steps when ramped: stress-ng when the image has it, else `tail` reading N
/// zero bytes from a pipe held open for the duration, which keeps that newline-free line in
/// memory.
const MEMORY_SCRIPT: &str = include_str!("scripts/memory.sh");

/// Signals the target container's main process (PID 1 of the PID namespace it shares with
/// the target), then checks it went. A PID 1 ignores what it does not handle, and KILL always.
const KILL_SCRIPT: &str = include_str!("scripts/container_kill.sh");

/// Adds the container; waits until it runs, or for containerKill until the target restarted.
pub async fn apply(ctx: &Context, namespace: &str, pod: &str, container: &Value) -> Result<Outcome, FaultError> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let name = container["name"].as_str().unwrap_or_default().to_owned();
    let target = container["targetContainerName"].as_str().map(str::to_owned);
    let action = format!("add ephemeral container {name} to pod {namespace}/{pod}");
    let restarts_before = match &target {
        Some(t) => {
            let current = pods.get(pod).await.map_err(FaultError::api(&action))?;
            if current.spec.as_ref().and_then(|s| s.share_process_namespace) == Some(true) {
                return Err(FaultError::Refused(format!(
                    "pod {namespace}/{pod} shares one process namespace (shareProcessNamespace): PID 1 is its pause container, not {t}'s main process; use podKill"
                )));
            }
            restarts(&current, t)
        }
        None => 0,
    };
    let params = PatchParams {
        dry_run: ctx.dry_run,
        ..Default::default()
    };
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    pods.patch_ephemeral_containers(pod, &params, &Patch::Strategic(&patch))
        .await
        .map_err(FaultError::api(&action))?;
    if ctx.dry_run {
        return Ok(Outcome::Injected);
    }
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    // A script that runs may still find its tool dead a moment later (a stress-ng that
    // aborts, a tc the kernel refuses): it is in place once it has run for SETTLE (or half
    // its duration).
    let mut running_since: Option<tokio::time::Instant> = None;
    loop {
        let current = match pods.get(pod).await {
            Ok(p) => p,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Ok(Outcome::NotInjected {
                    reason: format!("pod {namespace}/{pod} is gone"),
                });
            }
            Err(e) => return Err(FaultError::api(&action)(e)),
        };
        if let Some(t) = &target
            && restarts(&current, t) > restarts_before
        {
            return Ok(Outcome::Injected);
        }
        match state(&current, &name) {
            State::Running if target.is_none() => {
                let since = *running_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= SETTLE.min(ctx.in_pod.duration / 2) {
                    return Ok(Outcome::Injected);
                }
            }
            // containerKill is judged by its target, not by its own end: when the target's main
            // process exits, the PID namespace the script shares with it goes too, and the
            // kernel kills the script (137) before it can report. Only its own refusal (3, with
            // why) means the signal did not go.
            State::Ended { code, message } if target.is_none() || code == 3 => {
                return Ok(Outcome::NotInjected {
                    reason: ended_early(&name, code, &message),
                });
            }
            State::Waiting { reason, message } if STUCK.contains(&reason.as_str()) => {
                return Ok(Outcome::NotInjected {
                    reason: format!("ephemeral container {name} cannot start: {reason}: {message}"),
                });
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            let what = match &target {
                Some(t) => format!("container {t} did not restart"),
                None => format!("ephemeral container {name} did not start"),
            };
            return Ok(Outcome::NotInjected {
                reason: format!("{what} within {}s", START_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a fault script must have run to be in place: past its check that its stressors
/// are alive (half a second after they start); half the fault's duration when that is shorter.
const SETTLE: Duration = Duration::from_secs(1);

/// Waiting reasons that will not resolve by themselves soon.
const STUCK: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

fn ended_early(name: &str, code: i32, message: &str) -> String {
    ended_with(name, " at once", code, message)
}

/// "ephemeral container NAME ended[WHEN] with exit code CODE[: its words]".
fn ended_with(name: &str, when: &str, code: i32, message: &str) -> String {
    let said = if message.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", message.trim())
    };
    format!("ephemeral container {name} ended{when} with exit code {code}{said}")
}

/// Stops a fault container and checks its effect is gone. Idempotent: a container that has
/// ended cleanly, or a pod that is gone, is success.
pub async fn stop(
    ctx: &Context,
    namespace: &str,
    pod: &str,
    name: &str,
    fault: &str,
    ends_at: DateTime<Utc>,
) -> Result<(), FaultError> {
    if ctx.dry_run {
        return Ok(());
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let action = format!("stop ephemeral container {name} in pod {namespace}/{pod}");
    let mut signalled: Option<Result<(), ExecError>> = None;
    let started = tokio::time::Instant::now();
    loop {
        let current = match pods.get(pod).await {
            Ok(p) => p,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(FaultError::api(&action)(e)),
        };
        match state(&current, name) {
            State::Absent => return Ok(()),
            // Its image was never pulled: the script never ran, there is nothing to stop. (It
            // cannot be removed from the pod; should the registry answer later, the script runs
            // at most what is left of the exercise's window, `DISASTERPIECE_NOT_AFTER`.)
            State::Waiting { reason, .. } if STUCK.contains(&reason.as_str()) => return Ok(()),
            State::Ended { code, message } => return judge(namespace, pod, name, fault, code, &message),
            State::Running if signalled.is_none() => {
                signalled = Some(terminate(&pods, pod, name).await);
                continue;
            }
            _ => {}
        }
        // Without exec, the container ends on its own at `ends_at`.
        let waited_enough = match &signalled {
            Some(Ok(())) => started.elapsed() >= STOP_TIMEOUT,
            _ => ctx.clock.now() > ends_at + chrono::Duration::from_std(STOP_TIMEOUT).unwrap_or_default(),
        };
        if waited_enough {
            let how = match &signalled {
                Some(Err(e)) => format!(" (TERM could not be sent: {e})"),
                _ => String::new(),
            };
            return Err(FaultError::Refused(format!(
                "ephemeral container {name} in pod {namespace}/{pod} is still running{how}; it ends by itself at {}",
                ends_at.format("%H:%M:%S UTC")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a fault container's end leaves nothing behind.
fn judge(namespace: &str, pod: &str, name: &str, fault: &str, code: i32, message: &str) -> Result<(), FaultError> {
    let netem = matches!(fault, "networkDelay" | "networkLoss");
    if code == 0 || code == 3 || !netem {
        return Ok(());
    }
    let said = if message.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", message.trim())
    };
    Err(FaultError::Refused(format!(
        "ephemeral container {name} in pod {namespace}/{pod} ended with exit code {code}{said}: the netem qdisc may remain on {DEVICE}; remove it with `tc qdisc del dev {DEVICE} root` in a debug container with NET_ADMIN, or delete the pod"
    )))
}

/// Why a command could not be run in a container through pods/exec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// No stream could be opened (RBAC, or an API server that cannot reach the kubelet).
    #[error("{0}")]
    Open(String),
    #[error("exec did not answer within 10s")]
    Timeout,
    /// The command ran and failed; the kubelet's words.
    #[error("{0}")]
    Failed(String),
}

/// Sends TERM to the fault script (by the PID it wrote) through pods/exec.
async fn terminate(pods: &Api<Pod>, pod: &str, container: &str) -> Result<(), ExecError> {
    let kill = format!("kill -TERM $(cat {PID_FILE})");
    match exec(pods, pod, container, &["/bin/sh", "-c", &kill]).await? {
        Some(s) if s.status.as_deref() == Some("Failure") => Err(ExecError::Failed(s.message.unwrap_or_default())),
        _ => Ok(()),
    }
}

/// Whether an exec stream into `pod` opens now, as the revert of an in-pod fault needs it to
/// stop the fault before its end: `true` is run in the pod's first container. Its answer does
/// not matter (an image without `true` still proves the path); only a stream that cannot be
/// opened — RBAC, or an API server that cannot reach the kubelet — fails. Changes nothing.
pub async fn exec_reaches(client: &kube::Client, namespace: &str, pod: &str) -> Result<(), ExecError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let current = pods
        .get(pod)
        .await
        .map_err(|e| ExecError::Open(crate::api::api_message(&e)))?;
    let container = current
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .unwrap_or_default();
    exec(&pods, pod, &container, &["true"]).await.map(|_| ())
}

/// Why fault container `name` of `namespace/pod` is no longer in place, if it is not: it ended
/// (its exit code and words), or its pod is gone. `None` while it runs, and when the API server
/// does not answer (a blip does not end a window).
pub async fn gone(client: &kube::Client, namespace: &str, pod: &str, name: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match pods.get(pod).await {
        Ok(current) => match state(&current, name) {
            State::Ended { code, message } => Some(ended_with(name, "", code, &message)),
            _ => None,
        },
        Err(kube::Error::Api(s)) if s.code == 404 => Some(format!("pod {namespace}/{pod} is gone")),
        Err(_) => None,
    }
}

/// Runs `command` in `container` of `pod` through pods/exec, bounded to 10 s: the closing
/// Status it sent, if any, or why no stream could be opened.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: &[&str],
) -> Result<Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>, ExecError> {
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(false)
        .stderr(true);
    let exec = async {
        let mut process = pods
            .exec(pod, command.iter().copied(), &params)
            .await
            .map_err(|e| ExecError::Open(crate::api::api_message(&e)))?;
        let status = match process.take_status() {
            Some(status) => status.await,
            None => None,
        };
        let _ = process.join().await;
        Ok(status)
    };
    tokio::time::timeout(Duration::from_secs(10), exec)
        .await
        .unwrap_or(Err(ExecError::Timeout))
}

enum State {
    Absent,
    Pending,
    Waiting { reason: String, message: String },
    Running,
    Ended { code: i32, message: String },
}

fn state(pod: &Pod, name: &str) -> State {
    let declared = pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.name == name));
    if !declared {
        return State::Absent;
    }
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref())
        .and_then(|s| s.iter().find(|c| c.name == name));
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return State::Pending;
    };
    if let Some(t) = &state.terminated {
        return State::Ended {
            code: t.exit_code,
            message: t.message.clone().unwrap_or_default(),
        };
    }
    if state.running.is_some() {
        return State::Running;
    }
    match &state.waiting {
        Some(w) => State::Waiting {
            reason: w.reason.clone().unwrap_or_default(),
            message: w.message.clone().unwrap_or_default(),
        },
        None => State::Pending,
    }
}

fn restarts(pod: &Pod, container: &str) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.iter().find(|c| c.name == container))
        .map_or(0, |c| c.restart_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Duration as D;

    #[test]
    fn netem_arguments_follow_tc_syntax() {
        let delay = NetworkDelay {
            latency: D::from_millis(300),
            jitter: Some(D::from_millis(50)),
            correlation: Some(25),
            destination: None,
        };
        assert_eq!(delay_netem(&delay), "delay 300ms 50ms 25%");
        let plain = NetworkDelay {
            jitter: None,
            correlation: Some(25),
            ..delay
        };
        // tc reads a correlation only after a jitter.
        assert_eq!(delay_netem(&plain), "delay 300ms");
        let loss = NetworkLoss {
            percent: 12.5,
            correlation: None,
            destination: None,
        };
        assert_eq!(loss_netem(&loss), "loss 12.5%");
    }

    /// Runs a fault's script with `sh` and its environment; TERM after `term_after` if given.
    /// Runs a fault's container command as the kubelet runs it (after Kubernetes' expansion,
    /// with the container's environment), and, after `term_after`, stops it as a revert does:
    /// TERM to the PID its script wrote.
    fn run_script(fault: &str, body: &str, env: Vec<(&str, String)>, term_after: Option<Duration>) -> (i32, String) {
        let mut env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        env.push(("DISASTERPIECE_FAULT".into(), fault.into()));
        if !env.iter().any(|(k, _)| k == "DISASTERPIECE_SECONDS") {
            env.push(("DISASTERPIECE_SECONDS".into(), "20".into()));
        }
        let pid_file = std::env::temp_dir().join(format!(
            "disasterpiece-test-{}-{}.pid",
            std::process::id(),
            crate::random::u64()
        ));
        env.push(("DISASTERPIECE_PID_FILE".into(), pid_file.display().to_string()));
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let words: Vec<String> = command(fault, body)
            .as_array()
            .expect("a command")
            .iter()
            .map(|w| disasterpiece_common::expansion::expand(w.as_str().expect("a word"), lookup))
            .collect();
        let child = std::process::Command::new(&words[0])
            .args(&words[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        if let Some(after) = term_after {
            std::thread::sleep(after);
            let written = std::fs::read_to_string(&pid_file).expect("the script wrote its PID");
            assert_eq!(
                written.trim().parse::<u32>().ok(),
                Some(child.id()),
                "the PID file holds {written:?}"
            );
            let status = std::process::Command::new("sh")
                .args(["-c", &format!("kill -TERM $(cat {})", pid_file.display())])
                .status()
                .expect("kill");
            assert!(status.success());
        }
        let output = child.wait_with_output().expect("wait");
        let _ = std::fs::remove_file(&pid_file);
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// Every fault's whole script, as its container runs it, passes shellcheck (POSIX sh).
    #[test]
    #[cfg_attr(not(has_shellcheck), ignore = "needs shellcheck (apt-get install shellcheck)")]
    fn every_fault_script_passes_shellcheck() {
        use std::io::Write;
        for (fault, body) in [
            ("networkDelay", NETEM_SCRIPT),
            ("cpuStress", CPU_SCRIPT),
            ("memoryStress", MEMORY_SCRIPT),
            ("containerKill", KILL_SCRIPT),
        ] {
            let mut check = std::process::Command::new("shellcheck")
                .args(["--shell=sh", "--severity=style", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("shellcheck");
            check
                .stdin
                .take()
                .expect("stdin")
                .write_all(script(fault, body).as_bytes())
                .expect("write");
            let output = check.wait_with_output().expect("shellcheck");
            assert!(
                output.status.success(),
                "{fault}:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
    }

    #[test]
    fn the_stress_scripts_run_until_term_then_stop_and_say_so() {
        let cpu = CpuStress { workers: 1, load: 50 };
        let memory = MemoryStress {
            size: "1Mi".into(),
            ramp: None,
        };
        for (fault, body, env) in [
            ("cpuStress", CPU_SCRIPT, cpu_env(&cpu)),
            ("memoryStress", MEMORY_SCRIPT, memory_env(&memory, 1 << 20)),
        ] {
            let (code, out) = run_script(fault, body, env, Some(Duration::from_millis(500)));
            assert_eq!(code, 0, "{fault}: {out}");
            assert!(
                out.contains(&format!("disasterpiece: {fault}: ")),
                "{fault} started: {out}"
            );
            assert!(
                out.contains(&format!("disasterpiece: {fault} stopped")),
                "{fault}: {out}"
            );
        }
    }

    /// The cpuStress script with stress-ng, run as its container runs it: as uid 65534 (when
    /// the test may switch users) from `/`, where stress-ng used to abort on a working directory
    /// it cannot write while the script said the fault was in place. Returns the exit code,
    /// what it said, and how many stress-ng processes ran 1.5 s in.
    fn stress_as_the_container(load: &str) -> (i32, String, usize) {
        let pid_file = std::env::temp_dir().join(format!("dp-stress-{}-{}.pid", std::process::id(), load));
        let _ = std::fs::remove_file(&pid_file);
        let mut env: Vec<(String, String)> = cpu_env(&CpuStress { workers: 1, load: 10 })
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.retain(|(k, _)| k != "DISASTERPIECE_CPU_LOAD");
        env.extend([
            ("DISASTERPIECE_CPU_LOAD".to_owned(), load.to_owned()),
            ("DISASTERPIECE_FAULT".into(), "cpuStress".into()),
            ("DISASTERPIECE_SECONDS".into(), "20".into()),
            ("DISASTERPIECE_PID_FILE".into(), pid_file.display().to_string()),
        ]);
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let words: Vec<String> = command("cpuStress", CPU_SCRIPT)
            .as_array()
            .expect("a command")
            .iter()
            .map(|w| disasterpiece_common::expansion::expand(w.as_str().expect("a word"), lookup))
            .collect();
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let mut run = if root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .args(&words);
            c
        } else {
            let mut c = std::process::Command::new(&words[0]);
            c.args(&words[1..]);
            c
        };
        let child = run
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        std::thread::sleep(Duration::from_millis(1500));
        let running = std::process::Command::new("pgrep")
            .args(["-x", "stress-ng", "-P", &child.id().to_string()])
            .output()
            .map_or(0, |o| String::from_utf8_lossy(&o.stdout).lines().count());
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = std::process::Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let output = child.wait_with_output().expect("wait");
        let _ = std::fs::remove_file(&pid_file);
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            running,
        )
    }

    #[test]
    #[cfg_attr(not(has_stress_ng), ignore = "needs stress-ng (apt-get install stress-ng)")]
    fn stress_ng_runs_as_the_container_does_and_a_stressor_that_dies_is_said() {
        let (code, out, running) = stress_as_the_container("50");
        assert_eq!(code, 0, "{out}");
        assert!(running >= 1, "no stress-ng running: {out}");
        assert!(out.contains("cpuStress: 1 worker(s) at 50%"), "{out}");
        // A stressor that ends at once is not a fault in place: exit 3, with its words.
        let (code, out, _) = stress_as_the_container("200");
        assert_eq!(code, 3, "{out}");
        assert!(
            out.contains("its stressor ended at once (exit 1)") && out.contains("cpu-load"),
            "{out}"
        );
    }

    /// A ramp is part of the fault's window, not added to it: 2 s of ramp in a 3 s fault ends
    /// after 3 s, not 5.
    #[test]
    fn memory_stress_with_a_ramp_ends_when_its_duration_does() {
        let memory = MemoryStress {
            size: "2Mi".into(),
            ramp: Some(D::from_secs(2)),
        };
        let mut env = memory_env(&memory, 2 << 20);
        env.push(("DISASTERPIECE_SECONDS", "3".into()));
        let started = std::time::Instant::now();
        let (code, out) = run_script("memoryStress", MEMORY_SCRIPT, env, None);
        let took = started.elapsed();
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("memoryStress: holding 2Mi until the fault ends"), "{out}");
        // Before: ramp plus duration, with each of 10 steps rounded up to a second: 12 s.
        assert!(took < Duration::from_secs(8), "ran {took:?} for a 3 s fault");
    }

    #[test]
    fn a_script_never_runs_past_its_exercises_window() {
        let cpu = CpuStress { workers: 1, load: 10 };
        // The scripts read the machine's clock (`date +%s`).
        let past = (crate::clock::Clock::system().now().timestamp() - 5).to_string();
        let mut env = cpu_env(&cpu);
        env.push((ENV_NOT_AFTER, past));
        let (code, out) = run_script("cpuStress", CPU_SCRIPT, env, None);
        assert_eq!(code, 3, "{out}");
        assert!(out.contains("started after its exercise's window ended"), "{out}");
        // Two seconds left of a twenty-second fault: it runs two seconds and stops by itself.
        let soon = (crate::clock::Clock::system().now().timestamp() + 2).to_string();
        let mut env = cpu_env(&cpu);
        env.push((ENV_NOT_AFTER, soon));
        let started = std::time::Instant::now();
        let (code, out) = run_script("cpuStress", CPU_SCRIPT, env, None);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("cpuStress: 1 worker(s) at 10% for 1s") || out.contains("for 2s"),
            "{out}"
        );
        assert!(started.elapsed() < Duration::from_secs(15), "ran past its window");
    }

    #[test]
    fn the_netem_script_that_cannot_add_its_qdisc_exits_3_and_says_why() {
        // A device that does not exist: tc refuses (or is missing), and nothing is changed.
        let mut env = netem_env("delay 300ms", None);
        env.retain(|(k, _)| *k != "DISASTERPIECE_DEVICE");
        env.push(("DISASTERPIECE_DEVICE", "dp-no-such0".into()));
        let (code, out) = run_script("networkDelay", NETEM_SCRIPT, env, None);
        assert_eq!(code, 3, "{out}");
        assert!(out.contains("could not add netem to dp-no-such0"), "{out}");
    }

    #[test]
    fn a_script_ending_badly_is_a_revert_failure_only_when_netem_may_remain() {
        assert!(judge("ns", "p", "c", "networkDelay", 0, "netem removed").is_ok());
        assert!(judge("ns", "p", "c", "networkDelay", 3, "could not add").is_ok());
        assert!(judge("ns", "p", "c", "cpuStress", 137, "").is_ok());
        let e = judge("ns", "p", "c", "networkLoss", 137, "").unwrap_err().to_string();
        assert!(e.contains("tc qdisc del dev eth0 root"), "{e}");
        let e = judge("ns", "p", "c", "networkDelay", 4, "netem is still on eth0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("netem is still on eth0"), "{e}");
    }
}
