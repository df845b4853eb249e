//! Leader election on a `coordination.k8s.io/v1` Lease: only the holder runs Exercises.
//!
//! Guarantees: a replica holds the lease only after writing itself into it with the
//! resourceVersion it read (optimistic concurrency: of two replicas racing for it, one wins);
//! a holder that cannot renew within `duration` stops considering itself leader before anyone
//! else may take the lease (it gives up [`Election::fence`], two thirds of `duration`, after
//! its last renewal was sent, as client-go's renew deadline: 10 s of 15 s).
//!
//! Cost at rest: the holder renews every [`Election::renew_every`] (two fifths of `duration`,
//! 6 s of 15 s) with one PUT of the Lease it last wrote, without reading it first (client-go's
//! fast path); only a conflict makes it read the Lease again. That is 0.17 requests a second.
//! Clock skew between replicas does not matter: as client-go does, a replica judges another's
//! lease expired only once it has itself seen the lease record unchanged for the lease's
//! duration (tokio's monotonic time), never by comparing `renewTime`, written by another
//! machine's clock, with its own. `acquireTime` and `renewTime` are written for people.
//! Fencing: every write a leader makes goes through its [`Fence`], which lets a write leave
//! only while the last renewal is under `duration / 2` old (monotonic time). A replica cut off
//! from the API server, whose renewal hangs, therefore stops writing before anyone else can
//! take the Lease, whatever its runs are doing; only a request already sent may still land.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use super::error::Fenced;
use crate::clock::Clock;

#[derive(Debug, Clone)]
pub struct Election {
    pub namespace: String,
    pub name: String,
    /// Who this replica is (the pod name in a cluster).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
}

impl Election {
    /// How often the holder renews (and a standby looks): two fifths of the lease.
    pub fn renew_every(&self) -> Duration {
        self.duration * 2 / 5
    }

    /// How long after a renewal was sent the holder may still write: two thirds of the lease,
    /// so a third of it is left for requests already sent to land before anyone else may take
    /// it.
    pub fn fence(&self) -> Duration {
        self.duration * 2 / 3
    }
}

pub struct Elector {
    api: Api<Lease>,
    /// Open while this replica may write as the leader.
    fence: Fence,
    /// The renewal failures in a row, for the log: the first is logged, then every tenth.
    failures: u32,
    election: Election,
    /// The lease record as last read (holder, renewTime, transitions) and when it was first
    /// seen as it is.
    observed: Option<(String, Instant)>,
    /// Writes `acquireTime` and `renewTime`.
    clock: Clock,
    /// The Lease as this replica last wrote it, while it holds it: renewed from it, unread.
    held: Option<Lease>,
}

impl Elector {
    pub fn new(client: &Client, election: Election, clock: Clock) -> Self {
        Elector {
            api: Api::namespaced(client.clone(), &election.namespace),
            fence: Fence::default(),
            failures: 0,
            election,
            observed: None,
            clock,
            held: None,
        }
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.election.renew_every()
    }

    /// Whether the last renewal (or look, on a standby) went through.
    pub fn renewed(&self) -> bool {
        self.failures == 0
    }

    /// The fence this replica's writes go through (see [`Fence::client`]).
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Takes or renews the lease; whether this replica leads now.
    pub async fn lead(&mut self) -> bool {
        // Taken before asking: the renewal counts from when it was sent, not answered.
        let asked = Instant::now();
        let result = self.try_lead().await;
        if let Err(e) = &result {
            self.failures += 1;
            if self.failures % 10 == 1 {
                let lease = format!("{}/{}", self.election.namespace, self.election.name);
                let category = super::error::Category::of(e).as_str();
                tracing::warn!(category, lease = %lease, failures = self.failures, error = %e, "could not renew the lease");
            }
        } else if self.failures > 0 {
            tracing::info!(failures = self.failures, "the lease can be renewed again");
            self.failures = 0;
        }
        match result {
            Ok(true) => {
                self.fence.open_until(asked + self.election.fence());
                true
            }
            Ok(false) => {
                self.fence.close();
                false
            }
            // The API server cannot be asked: lead only while the last renewal is fresh enough
            // that nobody else can have taken the lease, which is what the fence says.
            Err(_) => self.fence.is_open(),
        }
    }

    /// Gives the lease up on a clean stop, so another replica takes it at once rather than
    /// after `duration`: empties the holder, if this replica still holds it (written with the
    /// resourceVersion read, so a lease someone else took meanwhile is left alone).
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        self.fence.close();
        self.held = None;
        let current = match self.api.get(&self.election.name).await {
            Ok(lease) => lease,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let holder = current.spec.as_ref().and_then(|s| s.holder_identity.clone());
        if holder.as_deref() != Some(self.election.identity.as_str()) {
            return Ok(());
        }
        let mut value = serde_json::to_value(&current).map_err(kube::Error::SerdeError)?;
        value["spec"]["holderIdentity"] = json!("");
        let next: Lease = serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
        match self
            .api
            .replace(&current.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            // Someone else wrote it first: not ours to release any more.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn try_lead(&mut self) -> Result<bool, kube::Error> {
        let micro = self.clock.now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        // The fast path: renew the Lease as last written. A conflict means someone else wrote
        // it since: read it, as a replica that does not hold it would.
        if let Some(mut held) = self.held.take() {
            if let Some(spec) = held.spec.as_mut() {
                spec.renew_time = serde_json::from_value(json!(micro)).ok();
            }
            match self
                .api
                .replace(&self.election.name, &PostParams::default(), &held)
                .await
            {
                Ok(written) => {
                    self.held = Some(written);
                    return Ok(true);
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        let Election {
            name,
            identity,
            duration,
            ..
        } = &self.election;
        let seconds = duration.as_secs().max(1) as i32;
        let current = match self.api.get(name).await {
            Ok(lease) => lease,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                let lease: Lease = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"holderIdentity": identity, "leaseDurationSeconds": seconds,
                        "acquireTime": micro, "renewTime": micro, "leaseTransitions": 0},
                }))
                .map_err(kube::Error::SerdeError)?;
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(written) => {
                        self.held = Some(written);
                        Ok(true)
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        let mut value = serde_json::to_value(&current).map_err(kube::Error::SerdeError)?;
        let spec = &value["spec"];
        let holder = spec["holderIdentity"].as_str().unwrap_or_default().to_owned();
        let record = format!("{holder}\n{}\n{}", spec["renewTime"], spec["leaseTransitions"]);
        let seen_since = match &self.observed {
            Some((seen, since)) if *seen == record => *since,
            _ => {
                let since = Instant::now();
                self.observed = Some((record, since));
                since
            }
        };
        let lasts = Duration::from_secs(
            spec["leaseDurationSeconds"]
                .as_u64()
                .unwrap_or(u64::from(seconds.unsigned_abs())),
        );
        let expired = seen_since.elapsed() >= lasts;
        if holder != *identity && !expired && !holder.is_empty() {
            return Ok(false);
        }
        if holder != *identity {
            let transitions = spec["leaseTransitions"].as_i64().unwrap_or(0) + 1;
            value["spec"]["acquireTime"] = json!(micro);
            value["spec"]["leaseTransitions"] = json!(transitions);
        }
        value["spec"]["holderIdentity"] = json!(identity);
        value["spec"]["leaseDurationSeconds"] = json!(seconds);
        value["spec"]["renewTime"] = json!(micro);
        let next: Lease = serde_json::from_value(value).map_err(kube::Error::SerdeError)?;
        match self
            .api
            .replace(&current.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(written) => {
                self.held = Some(written);
                Ok(true)
            }
            // Someone else wrote it first.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Lets a leader's writes leave only while its Lease is surely its own: until a deadline the
/// [`Elector`] moves forward at each renewal (`duration / 2` after the renewal was sent).
/// Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Fence(std::sync::Arc<std::sync::Mutex<Option<Instant>>>);

impl Fence {
    pub fn open_until(&self, until: Instant) {
        *self.0.lock().expect("fence lock") = Some(until);
    }

    pub fn close(&self) {
        *self.0.lock().expect("fence lock") = None;
    }

    pub fn is_open(&self) -> bool {
        self.0
            .lock()
            .expect("fence lock")
            .is_some_and(|until| Instant::now() < until)
    }

    /// `client`, with every request that changes something (any method but GET and HEAD,
    /// and exec, attach and port-forward, which run or reach into a container) refused on
    /// this side while the fence is closed: nothing of it reaches the API server. Reads and
    /// watches always go.
    pub fn client(&self, client: &Client) -> Client {
        let fence = self.clone();
        let service = tower::filter::Filter::new(
            crate::engine::retry::ClientService(client.clone()),
            move |request: http::Request<kube::client::Body>| {
                if changes_something(&request) && !fence.is_open() {
                    let refused = Fenced {
                        method: request.method().clone(),
                        path: request.uri().path().to_owned(),
                    };
                    return Err(refused);
                }
                Ok(request)
            },
        );
        Client::new(service, client.default_namespace())
    }
}

/// Whether a request changes something: a write, or a session inside a container.
fn changes_something<B>(request: &http::Request<B>) -> bool {
    let reads = matches!(*request.method(), http::Method::GET | http::Method::HEAD);
    let path = request.uri().path();
    let session = ["/exec", "/attach", "/portforward"].iter().any(|s| path.ends_with(s));
    !reads || session
}
