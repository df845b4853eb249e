//! `pods/exec` over WebSocket, the `v5.channel.k8s.io` / `v4.channel.k8s.io` subprotocols that
//! kubectl and kube speak: one byte of channel (1 stdout, 2 stderr, 3 the closing `Status`)
//! before each binary message.
//!
//! When containers run as processes (`runtime`), the command runs for real inside the
//! container, as its user, with its env. Otherwise the simulator's containers run no programs,
//! and it understands one command, `kill [-SIG | -s SIG] PID`, sent to PID 1 of a running
//! Disasterpiece fault container (the ephemeral containers of the in-pod faults): TERM, INT
//! and HUP play the script's trap, which removes the fault and exits 0 with a termination
//! message; KILL ends it with 137 (a real netem qdisc would stay behind). Any other command
//! exits 126 with a message saying so, as a container without that program would.

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

use super::Shared;
use super::store::{ApiError, at};
use super::world::ENV_FAULT;

const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// What the command did: its exit code and output.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The command, run (played) already, or to run in the container's process.
enum Run {
    Played(Ran),
    Process {
        shared: Arc<Shared>,
        pod: Value,
        container: String,
        command: Vec<String>,
    },
}

impl Run {
    async fn finish(self) -> Ran {
        let (shared, pod, container, command) = match self {
            Run::Played(ran) => return ran,
            Run::Process {
                shared,
                pod,
                container,
                command,
            } => (shared, pod, container, command),
        };
        // A stand-in asked for just now takes a moment to start.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let entry = loop {
            let entry = shared.runtime.as_ref().and_then(|r| {
                let mut runtime = r.lock().expect("runtime lock");
                // Each step (the pod's sandbox, then the container) starts once the one
                // before is ready.
                runtime.container(&pod, &container, true);
                runtime.entry(&pod, &container)
            });
            match entry {
                Some(entry) => break entry,
                None if tokio::time::Instant::now() >= deadline => {
                    return Ran {
                        code: 126,
                        stdout: String::new(),
                        stderr: format!("container {container} did not start"),
                    };
                }
                None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let (code, stdout, stderr) = super::runtime::exec(&entry, &command, std::time::Duration::from_secs(300)).await;
        Ran {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

pub(crate) async fn serve(shared: &Arc<Shared>, namespace: &str, pod: &str, parts: Parts) -> Response {
    match prepare(shared, namespace, pod, &parts) {
        Ok((protocol, accept, run, wants)) => upgrade(parts, protocol, accept, run, wants),
        Err(e) => super::api::error(&e),
    }
}

/// Which streams the client asked for: stdout, stderr.
type Wants = (bool, bool);

fn prepare(
    shared: &Arc<Shared>,
    namespace: &str,
    pod_name: &str,
    parts: &Parts,
) -> Result<(&'static str, String, Run, Wants), ApiError> {
    if parts.method != Method::GET && parts.method != Method::POST {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ));
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let flag = |key: &str| matches!(param(key), Some("true" | "1"));
    let command: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if !flag("stdin") && !flag("stdout") && !flag("stderr") {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }

    let mut store = shared.store.lock().expect("store lock");
    let pods = store.find_type("", "v1", "pods").expect("pods are served");
    let mut pod = store
        .get("/pods", namespace, pod_name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&pods, pod_name))?;
    let names = |list: &str| -> Vec<String> {
        pod.pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let regular = names("/spec/containers");
    let ephemeral = names("/spec/ephemeralContainers");
    let container = match param("container") {
        Some(c) => c.to_owned(),
        None if regular.len() == 1 => regular[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: {regular:?}"
            )));
        }
    };
    if !regular.contains(&container) && !ephemeral.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    }
    if shared
        .misbehaviour
        .lock()
        .expect("misbehaviour lock")
        .kubelet_unreachable
    {
        // What the API server says when it cannot reach the pod's kubelet (an error that is
        // no API status: code 500, no reason).
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_owned();
        let ip = store
            .get("/nodes", "", &node)
            .and_then(|n| n["status"]["addresses"].as_array().cloned())
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "10.0.0.1".into());
        return Err(ApiError::new(
            500,
            "",
            format!("error dialing backend: dial tcp {ip}:10250: connect: connection refused"),
        ));
    }
    let statuses = if ephemeral.contains(&container) {
        "ephemeralContainerStatuses"
    } else {
        "containerStatuses"
    };
    let running = pod["status"][statuses]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["name"] == container.as_str() && at(s, "/state/running").is_some());
    if !running {
        return Err(ApiError::bad_request(format!("container not found (\"{container}\")")));
    }
    let key = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("this simulator serves exec over WebSocket only (no SPDY)"))?;
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let protocol = PROTOCOLS
        .into_iter()
        .find(|p| offered.split(',').any(|o| o.trim() == *p))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no supported WebSocket subprotocol in {offered:?}; expected one of {PROTOCOLS:?}"
            ))
        })?;
    let accept = derive_accept_key(key.as_bytes());
    if shared.runtime.is_some() {
        let run = Run::Process {
            shared: shared.clone(),
            pod,
            container,
            command,
        };
        return Ok((protocol, accept, run, (flag("stdout"), flag("stderr"))));
    }
    let ran = run(&mut pod, &container, &command, &store.now_rfc3339());
    if at(
        &store.get("/pods", namespace, pod_name).cloned().unwrap_or_default(),
        "/status",
    ) != at(&pod, "/status")
    {
        store.put_internal(&pods, pod);
        drop(store);
        shared.wake.notify_one();
    }
    Ok((protocol, accept, Run::Played(ran), (flag("stdout"), flag("stderr"))))
}

/// Runs `command` in `container`: only `kill` sent to a fault container's script does anything.
fn run(pod: &mut Value, container: &str, command: &[String], now: &str) -> Ran {
    let fail = |code: i32, stderr: String| Ran {
        code,
        stdout: String::new(),
        stderr,
    };
    let fault = pod
        .pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .and_then(|c| super::world::env(c, ENV_FAULT));
    let Some(signal) = kill_signal(command) else {
        return fail(
            126,
            format!(
                "{}: the simulator's containers run no programs but `kill`",
                command.join(" ")
            ),
        );
    };
    let Some(signal) = signal else {
        return fail(
            1,
            format!("{}: only PID 1 is known in this container", command.join(" ")),
        );
    };
    let Some(fault) = fault else {
        return fail(
            126,
            format!(
                "{}: the simulator signals only Disasterpiece fault containers",
                command.join(" ")
            ),
        );
    };
    let (code, reason, message) = match signal.as_str() {
        "TERM" | "INT" | "HUP" => (0, "Completed", super::world::removed_message(&fault)),
        "KILL" => (137, "Error", String::new()),
        other => return fail(1, format!("kill: SIG{other} is not handled by the fault script")),
    };
    for status in pod["status"]["ephemeralContainerStatuses"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if status["name"] == container {
            let started = at(status, "/state/running/startedAt").cloned().unwrap_or(json!(now));
            status["state"] = json!({"terminated": {"exitCode": code, "reason": reason, "message": message,
                "startedAt": started, "finishedAt": now}});
        }
    }
    Ran {
        code: 0,
        stdout: String::new(),
        stderr: String::new(),
    }
}

/// `kill [-SIG | -s SIG] PID` (also through `sh -c`) sent to the fault script — PID 1, or the
/// PID it wrote to `/tmp/disasterpiece.pid` — gives `Some(Some(SIG))`; `kill` at another PID
/// `Some(None)`; anything else `None`.
fn kill_signal(command: &[String]) -> Option<Option<String>> {
    let line = command.join(" ").replace("$(cat /tmp/disasterpiece.pid)", "$SCRIPT");
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if let ["sh" | "/bin/sh", "-c", ..] = words.as_slice() {
        words.drain(..2);
    }
    let (signal, pid) = match words.as_slice() {
        ["kill", pid] => ("TERM".to_owned(), *pid),
        ["kill", "-s", signal, pid] => (signal.to_string(), *pid),
        ["kill", signal, pid] if signal.starts_with('-') => (signal[1..].to_owned(), *pid),
        _ => return None,
    };
    let signal = match signal.trim_start_matches("SIG") {
        "15" => "TERM".to_owned(),
        "9" => "KILL".to_owned(),
        "2" => "INT".to_owned(),
        "1" => "HUP".to_owned(),
        s => s.to_uppercase(),
    };
    let script = pid == "1" || pid == "$SCRIPT";
    Some(script.then_some(signal))
}

fn upgrade(parts: Parts, protocol: &'static str, accept: String, run: Run, (stdout, stderr): Wants) -> Response {
    let mut request = Request::from_parts(parts, Body::empty());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let ran = run.finish().await;
        let mut socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let frame = |channel: u8, bytes: &[u8]| {
            let mut data = vec![channel];
            data.extend_from_slice(bytes);
            Message::binary(data)
        };
        if stdout && !ran.stdout.is_empty() {
            let _ = socket.send(frame(1, ran.stdout.as_bytes())).await;
        }
        if stderr && !ran.stderr.is_empty() {
            let _ = socket.send(frame(2, ran.stderr.as_bytes())).await;
        }
        let status = if ran.code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": format!("command terminated with non-zero exit code: exit status {}", ran.code),
                "details": {"causes": [{"reason": "ExitCode", "message": ran.code.to_string()}]}})
        };
        let _ = socket
            .send(frame(3, serde_json::to_vec(&status).unwrap_or_default().as_slice()))
            .await;
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = socket.close(Some(normal)).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn kill_commands_are_read_as_kill_reads_them() {
        assert_eq!(kill_signal(&words("kill 1")), Some(Some("TERM".into())));
        assert_eq!(kill_signal(&words("kill -TERM 1")), Some(Some("TERM".into())));
        assert_eq!(kill_signal(&words("kill -s INT 1")), Some(Some("INT".into())));
        assert_eq!(kill_signal(&words("kill -9 1")), Some(Some("KILL".into())));
        assert_eq!(kill_signal(&words("kill -SIGHUP 1")), Some(Some("HUP".into())));
        assert_eq!(kill_signal(&words("kill -TERM 7")), Some(None));
        let through_sh = [
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "kill -TERM $(cat /tmp/disasterpiece.pid)".to_owned(),
        ];
        assert_eq!(kill_signal(&through_sh), Some(Some("TERM".into())));
        assert_eq!(kill_signal(&words("tc qdisc show")), None);
    }
}
