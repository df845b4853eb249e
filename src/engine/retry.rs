//! Retrying transient API errors, for every request the engine makes.
//!
//! kube's own retry (on by default) retries every 429, including a PodDisruptionBudget's
//! refusal of an eviction, which is an answer, not a hiccup — for up to 15 attempts. The
//! engine turns it off and wraps the client in this policy instead: 500, 502, 503 and 504,
//! 429 *with* Retry-After (API priority and fairness), and lost connections are retried with
//! backoff; everything else is answered at once. Every retried call is logged for the report.
//! This is the one retry layer for API errors: nothing above it retries them again (a revert
//! re-applies its undo only on a 409 Conflict, which needs a fresh read, not a resend). An
//! eviction answered 500 (a pod under several PodDisruptionBudgets), the service proxy's
//! answers (the application's) and exec streams (a kubelet the API server cannot reach) are
//! not retried.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use tower::retry::{Policy, RetryLayer};
use tower::{Layer, Service};

/// The calls that were retried: `PATCH /apis/apps/v1/… → 503, retried`.
#[derive(Debug, Clone, Default)]
pub struct RetryLog(Arc<Mutex<Vec<String>>>);

impl RetryLog {
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn push(&self, entry: String) {
        if let Ok(mut log) = self.0.lock() {
            log.push(entry);
        }
    }
}

#[derive(Clone)]
struct Transient {
    log: RetryLog,
    attempt: u32,
}

/// Attempts after the first.
const MAX_RETRIES: u32 = 8;

impl Policy<Request<Body>, Response<Body>, kube::Error> for Transient {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<Body>, kube::Error>,
    ) -> Option<Self::Future> {
        // Through the service proxy a 503 is the application's answer, for a probe to judge.
        // A stream to a container (exec) answered 5xx is the API server failing to reach the
        // kubelet: the caller bounds the exec and says why at once, where retries would spend
        // its time (12 s of backoff) and hide the words.
        if req.uri().path().contains("/proxy/") || req.headers().contains_key(http::header::UPGRADE) {
            return None;
        }
        // An eviction answered 500 is the API server refusing a pod under several
        // PodDisruptionBudgets: an answer that does not change, reported at once.
        let eviction = req.uri().path().ends_with("/eviction");
        let why = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let flow_control = status == 429 && response.headers().contains_key(http::header::RETRY_AFTER);
                if !(matches!(status, 500 | 502 | 503 | 504) || flow_control) || (eviction && status == 500) {
                    return None;
                }
                status.to_string()
            }
            Err(kube::Error::HyperError(_) | kube::Error::Service(_)) => "no answer".to_owned(),
            Err(_) => return None,
        };
        if self.attempt >= MAX_RETRIES {
            return None;
        }
        self.attempt += 1;
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().to_string(), ToString::to_string);
        self.log
            .push(format!("{} {path} → {why}, retry {}", req.method(), self.attempt));
        let backoff = Duration::from_millis(50 * 2u64.pow(self.attempt.min(6)));
        Some(tokio::time::sleep(backoff))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        let body = req.body().try_clone()?;
        let mut clone = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *clone.headers_mut() = req.headers().clone();
        Some(clone)
    }
}

/// A `kube::Client` as a tower service, for layering (the retry here, the controller's
/// lease fence).
#[derive(Clone)]
pub struct ClientService(pub kube::Client);

impl Service<Request<Body>> for ClientService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + std::marker::Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(req).await })
    }
}

/// A client that retries transient errors (and only those), and the log of what it retried.
pub fn retrying_client(mut config: kube::Config) -> Result<(kube::Client, RetryLog), kube::Error> {
    config.default_retry = false;
    let namespace = config.default_namespace.clone();
    let inner = kube::Client::try_from(config)?;
    let log = RetryLog::default();
    let service = RetryLayer::new(Transient {
        log: log.clone(),
        attempt: 0,
    })
    .layer(ClientService(inner));
    Ok((kube::Client::new(service, namespace), log))
}
