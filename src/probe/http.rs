//! The http probe: status, latency budget, body. A host `NAME.NAMESPACE.svc` (or
//! `….svc.cluster.local`) is reached through the API server's service proxy, the way a client
//! outside the cluster can reach a Service; other `http://` addresses are asked directly.

use std::time::Instant;

use kube::client::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ProbeContext, Reading, Verdict};
use crate::scenario::model::{HttpMethod, HttpProbe};

use crate::scenario::address::service_address;

pub async fn sample(ctx: &ProbeContext, probe: &HttpProbe) -> Reading {
    let url = match url::Url::parse(&probe.url) {
        Ok(u) => u,
        Err(e) => return Reading::new(Verdict::Inconclusive, format!("`{}` is not a URL: {e}", probe.url)),
    };
    let started = Instant::now();
    let answer = tokio::time::timeout(probe.timeout.as_std(), fetch(ctx, probe, &url)).await;
    let elapsed = started.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut sample = match answer {
        Err(_) => Reading::new(Verdict::Fail, format!("no answer within {}", probe.timeout)),
        Ok(Err(e)) => Reading::new(Verdict::Fail, format!("request failed: {e}")),
        // Through the service proxy, the API server may answer instead of the service: its
        // refusal says nothing about the service, but a Service without endpoints is down.
        Ok(Ok((status, body))) if service_address(&url).is_some() && api_server_status(&body).is_some() => {
            let (reason, message) = api_server_status(&body).unwrap_or_default();
            if status == 503 && message.contains("no endpoints available") {
                Reading::new(
                    Verdict::Fail,
                    format!("503: {message} (no Ready pod behind the Service)"),
                )
            } else {
                Reading::new(
                    Verdict::Inconclusive,
                    format!(
                        "the API server answered for the service proxy, not the service: {status} {reason}: {message}"
                    ),
                )
            }
        }
        Ok(Ok((status, body))) => {
            let mut problems = Vec::new();
            if u32::from(status) != probe.expect_status {
                problems.push(format!("expected {}", probe.expect_status));
            }
            if let Some(budget) = probe.max_latency.filter(|b| elapsed > b.as_std()) {
                problems.push(format!("over the {budget} budget"));
            }
            if let Some(needle) = probe.body_contains.as_deref().filter(|n| !body.contains(n)) {
                problems.push(format!("body lacks {needle:?}"));
            }
            let observed = format!("{status} in {ms:.0} ms");
            if problems.is_empty() {
                Reading::new(Verdict::Pass, observed)
            } else {
                Reading::new(Verdict::Fail, format!("{observed} ({})", problems.join(", ")))
            }
        }
    };
    sample.latency_ms = Some(ms);
    sample
}

/// The reason and message of a Kubernetes `Status` body: what the API server (not the service
/// behind its proxy) answered.
fn api_server_status(body: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    (value["kind"] == "Status" && value["apiVersion"] == "v1").then(|| {
        (
            value["reason"].as_str().unwrap_or_default().to_owned(),
            value["message"].as_str().unwrap_or_default().to_owned(),
        )
    })
}

fn method(m: HttpMethod) -> &'static str {
    match m {
        HttpMethod::GET => "GET",
        HttpMethod::HEAD => "HEAD",
        HttpMethod::POST => "POST",
    }
}

/// The most of a response body a probe reads; the rest is not read (an endless body must not
/// exhaust the controller's memory).
pub const MAX_BODY: usize = 1 << 20;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// A header `validate` refuses.
    #[error("not sent: {0}")]
    Header(String),
    #[error("not sent: {0}")]
    NotAllowed(#[from] super::hosts::HostError),
    #[error("{0} addresses are not supported yet; use http, or a NAME.NAMESPACE.svc address")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("no answer within {0}s")]
    Timeout(u64),
    #[error("the answer is not HTTP")]
    NotHttp,
    /// What the transport said.
    #[error("{0}")]
    Transport(String),
}

async fn fetch(ctx: &ProbeContext, probe: &HttpProbe, url: &url::Url) -> Result<(u16, String), RequestError> {
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    if let Some((namespace, service, port)) = service_address(url) {
        // No probe header reaches the API server (`validate` says so too; a Scenario resource
        // may not have been validated). A direct request checks its headers in `direct`.
        if let Some((name, value)) = probe.headers.iter().next() {
            let problem = crate::scenario::validate::header_problem(url.as_str(), name, value).unwrap_or_default();
            return Err(RequestError::Header(problem));
        }
        let uri = format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}");
        let request = http::Request::builder()
            .method(method(probe.method))
            .uri(uri)
            .body(Body::empty())
            .map_err(|e| RequestError::Transport(e.to_string()))?;
        let response = ctx
            .client
            .send(request)
            .await
            .map_err(|e| RequestError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while bytes.len() <= MAX_BODY {
            match http_body_util::BodyExt::frame(&mut body).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(RequestError::Transport(e.to_string())),
                None => break,
            }
        }
        bytes.truncate(MAX_BODY);
        return Ok((status, String::from_utf8_lossy(&bytes).into_owned()));
    }
    direct(
        Some(&ctx.sources.hosts),
        url,
        method(probe.method),
        &path,
        &probe.headers,
    )
    .await
}

/// One request straight to an `http://` address (HTTP/1.1, connection closed after). With a
/// `policy` (the address came from a Scenario), the host must be allowed by it, and so must
/// every address it resolves to; without (the operator's own Prometheus), it is asked as is.
pub async fn direct(
    policy: Option<&super::hosts::HostPolicy>,
    url: &url::Url,
    method: &str,
    path: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(u16, String), RequestError> {
    // Every request is bounded in time, whatever its caller does (an http probe sets its own,
    // shorter, timeout around this).
    tokio::time::timeout(DIRECT_TIMEOUT, unbounded(policy, url, method, path, headers))
        .await
        .unwrap_or_else(|_| Err(RequestError::Timeout(DIRECT_TIMEOUT.as_secs())))
}

/// The longest a direct request may take.
pub const DIRECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn unbounded(
    policy: Option<&super::hosts::HostPolicy>,
    url: &url::Url,
    method: &str,
    path: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(u16, String), RequestError> {
    if url.scheme() != "http" {
        return Err(RequestError::Scheme(url.scheme().to_owned()));
    }
    let host = url.host_str().ok_or(RequestError::NoHost)?;
    let port = url.port_or_known_default().unwrap_or(80);
    let connected = match policy {
        Some(policy) => {
            let address = policy.resolve(url).await?;
            tokio::net::TcpStream::connect(address).await
        }
        None => tokio::net::TcpStream::connect((host, port)).await,
    };
    let transport = |e: std::io::Error| RequestError::Transport(e.to_string());
    let mut stream = connected.map_err(transport)?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: disasterpiece\r\n");
    // The same rules as `validate`, again here: a Scenario resource may not have been validated.
    for (k, v) in headers {
        if let Some(problem) = crate::scenario::validate::header_problem(url.as_str(), k, v) {
            return Err(RequestError::Header(problem));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).await.map_err(transport)?;
    // The head and at most MAX_BODY of the body; the rest is never read.
    let mut response = Vec::new();
    (&mut stream)
        .take((MAX_BODY + 64 * 1024) as u64)
        .read_to_end(&mut response)
        .await
        .map_err(transport)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(RequestError::NotHttp)?;
    let mut body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    if body.len() > MAX_BODY {
        let mut end = MAX_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_metadata_service_is_not_asked_even_where_any_host_is_allowed() {
        for address in ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:8080/"] {
            let url = url::Url::parse(address).expect("url");
            let refused = direct(
                Some(&crate::probe::hosts::HostPolicy::any()),
                &url,
                "GET",
                "/",
                &Default::default(),
            )
            .await
            .expect_err(address)
            .to_string();
            assert!(
                refused.starts_with("not sent:") && refused.contains("link-local or metadata"),
                "{refused}"
            );
        }
    }

    #[test]
    fn cluster_dns_names_map_to_the_service_proxy() {
        let parse = |u: &str| service_address(&url::Url::parse(u).expect("url"));
        assert_eq!(
            parse("http://checkout.shop.svc/healthz"),
            Some(("shop".into(), "checkout".into(), 80))
        );
        assert_eq!(
            parse("http://checkout.shop.svc.cluster.local:8080/"),
            Some(("shop".into(), "checkout".into(), 8080))
        );
        assert_eq!(parse("http://127.0.0.1:8080/"), None);
        assert_eq!(parse("http://example.com/"), None);
    }

    /// A server that answers 200 and then sends body forever; returns its address and how
    /// many bytes it managed to send.
    async fn endless() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let addr = listener.local_addr().expect("addr");
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 1024];
                    let _ = socket.read(&mut head).await;
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                    let chunk = vec![b'x'; 64 * 1024];
                    while socket.write_all(&chunk).await.is_ok() {
                        counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        (format!("http://{addr}/"), sent)
    }

    #[tokio::test]
    async fn an_endless_body_is_read_no_further_than_the_cap() {
        let (url, sent) = endless().await;
        let url = url::Url::parse(&url).expect("url");
        let (status, body) = direct(
            Some(&super::super::hosts::HostPolicy::any()),
            &url,
            "GET",
            "/",
            &Default::default(),
        )
        .await
        .expect("an answer");
        assert_eq!(status, 200);
        assert_eq!(body.len(), MAX_BODY);
        // The server could send more than the cap only into the socket buffers, not into us.
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < 64 * MAX_BODY);
    }

    #[tokio::test]
    async fn a_header_that_would_split_the_request_is_not_sent() {
        let (url, sent) = endless().await;
        let url = url::Url::parse(&url).expect("url");
        let headers = [("X-Trace".to_owned(), "1\r\nImpersonate-User: system:admin".to_owned())].into();
        let refused = direct(
            Some(&super::super::hosts::HostPolicy::any()),
            &url,
            "GET",
            "/",
            &headers,
        )
        .await
        .expect_err("refused")
        .to_string();
        assert!(refused.starts_with("not sent: the value of `X-Trace`"), "{refused}");
        let authorization = [("Authorization".to_owned(), "Bearer x".to_owned())].into();
        assert!(
            direct(
                Some(&super::super::hosts::HostPolicy::any()),
                &url,
                "GET",
                "/",
                &authorization
            )
            .await
            .is_err()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing was asked");
    }
}
