//! The controller's `/metrics` (Prometheus text format), `/healthz` and `/readyz`.
//!
//! Metrics: `disasterpiece_exercises_total{verdict}`, `disasterpiece_active_exercises`,
//! `disasterpiece_abort_latency_seconds` (histogram), `disasterpiece_reconcile_errors_total
//! {category}`, and the success metrics of the reports kept (`learning`). `/readyz` answers 200 once the controller has listed Exercises once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    exercises: Family<Labels, Counter>,
    active: Gauge<i64, AtomicI64>,
    abort_latency: Histogram,
    errors: Family<Labels, Counter>,
    ready: AtomicBool,
    /// The success metrics of the reports kept (`learning::families`), as last read.
    learning: std::sync::RwLock<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("disasterpiece");
        let exercises = Family::<Labels, Counter>::default();
        registry.register("exercises", "Exercises finished, by verdict", exercises.clone());
        let active = Gauge::<i64, AtomicI64>::default();
        registry.register("active_exercises", "Exercises running now", active.clone());
        // 10 ms to about 40 s.
        let abort_latency = Histogram::new(exponential_buckets(0.01, 2.0, 13));
        registry.register(
            "abort_latency_seconds",
            "From an abort request to the last revert confirmed",
            abort_latency.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register("reconcile_errors", "Reconcile errors, by category", errors.clone());
        // Every category from the start at 0, so a rate() over it has a series before the
        // first error.
        for category in super::error::Category::ALL {
            let _ = errors.get_or_create(&vec![("category".into(), category.as_str().into())]);
        }
        Metrics {
            registry,
            exercises,
            active,
            abort_latency,
            errors,
            ready: AtomicBool::new(false),
            learning: std::sync::RwLock::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn started(&self) {
        self.active.inc();
    }

    pub fn ended(&self) {
        self.active.dec();
    }

    pub fn finished(&self, verdict: super::crd::Verdict, abort_latency_s: Option<f64>) {
        self.exercises
            .get_or_create(&vec![("verdict".into(), verdict.as_str().into())])
            .inc();
        if let Some(latency) = abort_latency_s {
            self.abort_latency.observe(latency);
        }
    }

    pub fn error(&self, category: super::error::Category) {
        self.errors
            .get_or_create(&vec![("category".into(), category.as_str().into())])
            .inc();
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Replaces the success metrics with `families` (the text format, without `# EOF`).
    pub fn set_learning(&self, families: String) {
        *self.learning.write().unwrap_or_else(std::sync::PoisonError::into_inner) = families;
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        // The success metrics go before the end marker of the OpenMetrics text.
        let learning = self.learning.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(body) = out.strip_suffix("# EOF\n") {
            let mut text = body.to_owned();
            text.push_str(&learning);
            text.push_str("# EOF\n");
            return text;
        }
        out
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let app = Router::new()
        .route(
            "/metrics",
            get({
                let metrics = metrics.clone();
                move || async move {
                    (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.text(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || async move {
                if metrics.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok").into_response()
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready: Exercises not listed yet").into_response()
                }
            }),
        );
    let _ = axum::serve(listener, app).await;
}
