//! The controller process: three kube-runtime `Controller`s (Exercises, GameDays, Scenarios),
//! each a watch feeding a work queue of the objects that changed, and the Lease that decides
//! whether this replica acts.
//!
//! Expected flow: journals left by dead runs are reverted first; then the controllers watch,
//! and each changed object is reconciled on its own (`exercise::reconcile`,
//! `gameday::reconcile`, `scenarios::reconcile`), at most one reconcile per object at a time;
//! a reconcile that fails is logged and counted once, with its category and object, and is
//! tried again after a backoff that doubles per failure in a row (1 s to 5 min).
//! Guarantees: a controller at rest makes no request but its watches (and Lease renewals);
//! with `election`, only the replica holding the Lease reconciles, every write it makes passes
//! the Lease's fence (`lease::Fence`), and when it takes the Lease every object is reconciled
//! again; on `stop`, what runs here is aborted and reverted (the Lease renewed meanwhile), then
//! the Lease is released.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;

pub use super::context::Options;
use super::context::{Context, Kind};
use super::crd::Exercise;
use super::events::Reporter;
use crate::scenario::gameday::GameDayResource;
use crate::scenario::model::ScenarioResource;

/// `namespace/name` of a resource, for the log.
fn object_of<K: Resource>(k: &K) -> String {
    format!("{}/{}", k.namespace().unwrap_or_default(), k.name_any())
}

/// Runs a reconciler for one kind as kube-runtime does, with this module's logging, metrics and
/// backoff; `what` names the kind in the log.
macro_rules! reconciler {
    ($kind:ty, $what:expr, $reconcile:path) => {
        (
            |object: Arc<$kind>, ctx: Arc<Context>| async move {
                let name = object_of(object.as_ref());
                let done = $reconcile(object, ctx.clone()).await;
                if done.is_ok() {
                    ctx.succeeded($what, &name);
                }
                done
            },
            |object: Arc<$kind>, e: &kube::Error, ctx: Arc<Context>| ctx.failed($what, &object_of(object.as_ref()), e),
        )
    };
}

/// Runs the controller until `stop` says so.
pub async fn control(client: Client, options: Options, mut stop: watch::Receiver<bool>) {
    recover_left_behind(&client, &options).await;
    let mut elector = options
        .election
        .clone()
        .map(|e| super::lease::Elector::new(&client, e, options.clock.clone()));
    // With an election, every write from here on (runs, statuses, Events, GameDays) goes
    // through the Lease's fence: none leaves once this replica cannot know it still leads.
    let client = match &elector {
        Some(elector) => elector.fence().client(&client),
        None => client,
    };
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("(all)"),
        election = options.election.as_ref().map_or("off".to_owned(), |e| format!(
            "{}/{} as {}",
            e.namespace, e.name, e.identity
        )),
        "controller started"
    );
    let (leads, _) = watch::channel(elector.is_none());
    let ctx = Arc::new(Context {
        // Events name this replica by its Lease identity.
        events: Reporter::new(
            &client,
            options
                .election
                .as_ref()
                .map_or(super::events::COMPONENT, |e| e.identity.as_str()),
        ),
        client: client.clone(),
        options: options.clone(),
        running: Arc::default(),
        leads,
        failures: Mutex::default(),
    });
    let controllers = tokio::spawn(run_controllers(ctx.clone(), stop.clone()));
    let _learning = AbortOnDrop(tokio::spawn(learn(client.clone(), options.clone())));
    let _reviews = options.review.clone().map(|schedule| {
        AbortOnDrop(tokio::spawn(super::weekly::post_reviews(
            ctx.client.clone(),
            options.namespace.clone(),
            options.journal_namespace.clone(),
            schedule,
            options.clock.clone(),
            options.poll,
            ctx.leads.subscribe(),
        )))
    });
    // The Lease, renewed every two fifths of its duration while the controllers run.
    let mut leading = elector.is_none();
    let mut standing_by = false;
    while !*stop.borrow() {
        if let Some(elector) = elector.as_mut() {
            let now_leading = elector.lead().await;
            if leading && !now_leading {
                // Lost the lease: another replica leads, or will, and takes over what runs
                // here from its journal. Not one write more from this one (its revert and
                // status would land after the new leader's, and overwrite them): the runs
                // here are dropped where they stand.
                tracing::warn!("lost the lease: leaving the Exercises running here to the replica that leads next");
                ctx.leads.send_replace(false);
            } else if !leading && now_leading {
                ctx.leads.send_replace(true);
                tracing::info!("took the lease: running Exercises");
            } else if !now_leading && !standing_by {
                tracing::info!("standing by: another replica holds the lease");
            }
            standing_by = !now_leading;
            leading = now_leading;
            if !leading {
                // A standby serves too (it is ready to take over): Ready, so that a rollout
                // of several replicas is not held up by the ones that do not lead.
                options.metrics.set_ready();
            }
        }
        // Without an election there is nothing to renew: only `stop` wakes this loop. With one,
        // a renewal every two fifths of the Lease keeps the fence (two thirds of it) open; a
        // renewal that failed is tried again at the next poll.
        let renewed = elector.as_ref().is_some_and(|e| e.renewed());
        let renew = async {
            match &options.election {
                Some(e) if renewed || !leading => tokio::time::sleep(e.renew_every()).await,
                Some(e) => tokio::time::sleep(options.poll.min(e.renew_every())).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = renew => {}
            _ = stop.changed() => {}
        }
    }
    // Stopping: abort what runs here and let the reverts finish, while the controllers end
    // their last reconciles (one may start a run after the first abort: it is aborted too);
    // the Lease is renewed meanwhile, as the reverts pass its fence only while it is.
    let mut renewed = tokio::time::Instant::now();
    loop {
        // Read first: once the controllers are done, no run starts after the look below.
        let done = controllers.is_finished();
        let senders: Vec<_> = ctx.running.lock().expect("lock").values().cloned().collect();
        for s in senders.iter().filter(|s| s.borrow().is_none()) {
            let _ = s.send(Some("the controller is stopping".into()));
        }
        if done && senders.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(elector) = elector.as_mut()
            && leading
            && renewed.elapsed() >= options.poll.min(elector.renew_every())
        {
            renewed = tokio::time::Instant::now();
            leading = elector.lead().await;
            if !leading {
                // Another replica took over: the runs here stop where they stand.
                ctx.leads.send_replace(false);
            }
        }
    }
    if let (Some(elector), true) = (elector.as_mut(), leading) {
        match elector.release().await {
            Ok(()) => tracing::info!("released the lease"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the lease: another replica takes it once it lapses")
            }
        }
    }
    tracing::info!("controller stopped");
}

/// Whatever a dead controller (or CLI run) left behind is reverted before anything new runs:
/// everywhere, or (watching one namespace, with Roles there only) in that namespace and where
/// Node journals are kept.
async fn recover_left_behind(client: &Client, options: &Options) {
    let places: Vec<Option<&str>> = match options.namespace.as_deref() {
        None => vec![None],
        Some(ns) if ns == options.journal_namespace => vec![Some(ns)],
        Some(ns) => vec![Some(ns), Some(options.journal_namespace.as_str())],
    };
    for place in places {
        let lapse = crate::engine::journal::LAPSE;
        match crate::engine::recovery::recover_lapsed(client, place, &options.journal_namespace, lapse, &options.clock)
            .await
        {
            Ok(recovered) => {
                for r in recovered.iter().filter(|r| !r.failed.is_empty()) {
                    tracing::warn!(journal = %format!("{}/{}", r.namespace, r.journal), failed = ?r.failed, "a journal left behind was not fully reverted");
                }
                if !recovered.is_empty() {
                    tracing::info!(journals = recovered.len(), "reverted what dead runs left behind");
                }
            }
            Err(e) => {
                tracing::warn!(namespace = place.unwrap_or("(all)"), error = %e, "could not look for journals left behind")
            }
        }
    }
}

/// Reconciles of one kind at once.
const CONCURRENCY: u16 = 16;

/// The three controllers, until `stop`: each reconciles what its watch shows changed, and
/// everything again whenever this replica takes the Lease. Ready once all three have listed.
async fn run_controllers(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let client = &ctx.client;
    let namespace = ctx.options.namespace.as_deref();
    let stopped = || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    // Each time this replica takes the Lease: everything is reconciled again.
    let taken = || {
        futures_util::stream::unfold(ctx.leads.subscribe(), |mut leads| async move {
            leads.wait_for(|l| !*l).await.ok()?;
            leads.wait_for(|l| *l).await.ok()?;
            Some(((), leads))
        })
    };
    let watched = watcher::Config::default();
    // At most this many reconciles of a kind at once: at start-up every object is reconciled,
    // and a thousand finished Exercises need not be a thousand tasks at once (a run itself
    // is a task of its own, not a reconcile).
    let queue = controller::Config::default().concurrency(CONCURRENCY);
    let exercises = Controller::new(api::<Exercise>(client, namespace), watched.clone())
        .with_config(queue.clone())
        .reconcile_all_on(taken())
        .graceful_shutdown_on(stopped());
    // A GameDay's stage moves on when an Exercise it owns finishes.
    let gamedays = Controller::new(api::<GameDayResource>(client, namespace), watched.clone())
        .with_config(queue.clone())
        .owns(api::<Exercise>(client, namespace), watched.clone())
        .reconcile_all_on(taken())
        .graceful_shutdown_on(stopped());
    let scenarios = Controller::new(api::<ScenarioResource>(client, namespace), watched)
        .with_config(queue)
        .reconcile_all_on(taken())
        .graceful_shutdown_on(stopped());
    // Ready once the API server lists each kind to this replica. (Not by waiting on the
    // controllers' stores: their readiness wakes one waiter only, which their work queues
    // already are.)
    let ready = tokio::spawn(listed(
        client.clone(),
        ctx.options.namespace.clone(),
        ctx.options.metrics.clone(),
    ));
    let (reconcile, failed) = reconciler!(Exercise, Kind::Exercise, super::exercise::reconcile);
    let exercises = exercises
        .run(reconcile, failed, ctx.clone())
        .for_each(report("exercises"));
    let (reconcile, failed) = reconciler!(GameDayResource, Kind::GameDay, super::gameday::reconcile);
    let gamedays = gamedays
        .run(reconcile, failed, ctx.clone())
        .for_each(report("gamedays"));
    let (reconcile, failed) = reconciler!(ScenarioResource, Kind::Scenario, super::scenarios::reconcile);
    let scenarios = scenarios
        .run(reconcile, failed, ctx.clone())
        .for_each(report("scenarios"));
    tokio::join!(exercises, gamedays, scenarios);
    ready.abort();
}

/// Marks the controller ready once Exercises, GameDays and Scenarios can be listed (one
/// object each, tried again every second until they can).
async fn listed(client: Client, namespace: Option<String>, metrics: Arc<super::metrics::Metrics>) {
    let one = kube::api::ListParams::default().limit(1);
    let ns = namespace.as_deref();
    loop {
        let exercises = api::<Exercise>(&client, ns).list_metadata(&one).await;
        let gamedays = api::<GameDayResource>(&client, ns).list_metadata(&one).await;
        let scenarios = api::<ScenarioResource>(&client, ns).list_metadata(&one).await;
        match (exercises, gamedays, scenarios) {
            (Ok(_), Ok(_), Ok(_)) => {
                metrics.set_ready();
                return;
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::debug!(error = %e, "not ready: a kind cannot be listed yet");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// What a controller's stream yields for each reconcile.
type Reconciled<K, E> = Result<(kube::runtime::reflector::ObjectRef<K>, Action), controller::Error<E, watcher::Error>>;

/// Logs what a controller's stream says went wrong besides a reconcile (whose errors the
/// error policy logged): a watch that failed (it starts again with backoff).
fn report<K, E>(what: &'static str) -> impl FnMut(Reconciled<K, E>) -> std::future::Ready<()>
where
    K: Resource,
    E: std::error::Error,
{
    move |item| {
        match item {
            Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
            Err(controller::Error::QueueError(e)) => {
                tracing::warn!(category = "watch", object = what, error = %e, "the watch failed; it starts again with backoff")
            }
            Err(e) => tracing::warn!(object = what, error = %e, "the controller's queue failed"),
        }
        std::future::ready(())
    }
}

/// Reads the reports kept every `learn_every` and shows their success metrics on `/metrics`.
/// A read that fails keeps the last figures (and is logged).
async fn learn(client: Client, options: Options) {
    let every = options.learn_every.max(Duration::from_secs(1));
    loop {
        match super::reports::list_summaries(&client, options.namespace.as_deref()).await {
            Ok((summaries, _)) => {
                // Coverage needs the workloads; without them, the rest still shows.
                let workloads = super::reports::workloads(&client, options.namespace.as_deref())
                    .await
                    .inspect_err(|e| tracing::warn!("cannot list the workloads for coverage: {e}"))
                    .ok();
                options.metrics.set_learning(super::learning::families(
                    &summaries,
                    workloads.as_deref(),
                    options.clock.now(),
                ));
            }
            Err(e) => tracing::warn!("cannot read the reports kept for the success metrics: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
