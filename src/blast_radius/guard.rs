//! The blast-radius decision. PURE: candidates and rules in, chosen and excluded out.
//!
//! In order, a candidate is excluded when it lives in a protected namespace, carries
//! `disasterpiece.dev/exclude=true`, is not Ready, would leave its workload with fewer Ready
//! pods than `minHealthy`, has no PodDisruptionBudget headroom (when budgets are respected),
//! or is past the number the blast radius allows (`max` or the mode's count). The engine asks
//! again before each injection with the cluster as it is then ([`second_look`]).

use std::collections::HashMap;

use serde::Serialize;

use super::{Candidate, Unit};
use crate::scenario::model::{BlastRadius, BlastRadiusMode, PROTECTED_NAMESPACES};

/// Why a candidate is not acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Exclusion {
    ProtectedNamespace,
    OptedOut,
    NotReady,
    /// Acting on it would leave `left` Ready pods where `minHealthy` asks for `min`.
    WouldBreakMinHealthy {
        left: u32,
        min: u32,
    },
    /// Its PodDisruptionBudget allows no further disruption.
    NoBudgetHeadroom {
        budget: String,
    },
    /// The blast radius's `max` is reached.
    BeyondMax {
        max: u32,
    },
    /// The blast radius's count is reached (`one`, `count` or `percent`).
    BeyondBlastRadius {
        count: u32,
    },
}

impl Exclusion {
    pub fn explain(&self) -> String {
        match self {
            Exclusion::ProtectedNamespace => "protected namespace".into(),
            Exclusion::OptedOut => "opted out (label disasterpiece.dev/exclude=true)".into(),
            Exclusion::NotReady => "not Ready".into(),
            Exclusion::WouldBreakMinHealthy { left, min } => {
                format!("would leave {left} Ready, minHealthy is {min}")
            }
            Exclusion::NoBudgetHeadroom { budget } => format!("no PodDisruptionBudget headroom ({budget})"),
            Exclusion::BeyondMax { max } => format!("beyond max ({max})"),
            Exclusion::BeyondBlastRadius { count } => format!("blast radius reached ({count})"),
        }
    }
}

/// What the guard decided for one fault.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// How many targets the blast radius asks for, before exclusions.
    pub wanted: u32,
    pub chosen: Vec<Candidate>,
    pub excluded: Vec<(Candidate, Exclusion)>,
}

/// The Ready pods of each workload (`Deployment/checkout` → 3), and Ready schedulable nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub ready_pods: HashMap<String, u32>,
    pub ready_nodes: u32,
}

/// How many targets a blast radius asks for out of `matching`.
pub fn wanted(radius: &BlastRadius, matching: u32) -> u32 {
    let count = match radius.mode {
        BlastRadiusMode::One => 1,
        BlastRadiusMode::Count => radius.value.unwrap_or(1),
        // Rounded up: 34% of 3 pods is 2 pods, 1% of anything is at least one.
        BlastRadiusMode::Percent => (u64::from(radius.value.unwrap_or(100)) * u64::from(matching)).div_ceil(100) as u32,
        BlastRadiusMode::All => matching,
    };
    count.min(matching)
}

/// Chooses the targets. `order` is the candidates' order of preference (a shuffle the caller
/// seeds, so a choice can be reproduced); candidates keep their order in the output.
pub fn decide(unit: Unit, candidates: &[Candidate], radius: &BlastRadius, health: &Health) -> Decision {
    let matching = candidates.len() as u32;
    let count = wanted(radius, matching);
    let limit = radius.max.map_or(count, |max| count.min(max));
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut excluded = Vec::new();
    for candidate in candidates {
        match check(unit, candidate, radius, health, &chosen) {
            Some(reason) => excluded.push((candidate.clone(), reason)),
            None if chosen.len() as u32 >= limit => {
                let reason = match radius.max {
                    Some(max) if max < count => Exclusion::BeyondMax { max },
                    _ => Exclusion::BeyondBlastRadius { count },
                };
                excluded.push((candidate.clone(), reason));
            }
            None => chosen.push(candidate.clone()),
        }
    }
    Decision {
        wanted: count,
        chosen,
        excluded,
    }
}

/// What a live exercise has on record as acting on one target (a pod, `ns/name`, or a node,
/// `name`): a fault in place, or about to be (written to its journal before it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    pub target: String,
    pub exercise: String,
}

/// The guard's second look, right before an injection: `planned` as the cluster shows it
/// now (`now`: the candidates and health just read — or why they could not be read, which
/// spares the target: the guard fails closed), counting every target a live exercise has on
/// record (`disrupted`, this exercise's own earlier faults included) as already disrupted
/// while it still looks Ready — the cluster does not know yet of a pod about to be killed,
/// nor of a partitioned pod. So two exercises that ask at once never exceed `minHealthy` or a
/// PodDisruptionBudget together: each writes its intent before it looks, so the later one
/// sees the earlier. `Some(reason)` spares it.
pub fn second_look<E: std::fmt::Display>(
    unit: Unit,
    planned: &Candidate,
    radius: &BlastRadius,
    now: Result<(&[Candidate], &Health), E>,
    disrupted: &[Disruption],
    exercise: &str,
) -> Option<String> {
    let (candidates, health) = match now {
        Ok(now) => now,
        Err(why) => return Some(format!("cannot read the target's health to ask again ({why})")),
    };
    let Some(current) = candidates.iter().find(|c| c.key() == planned.key()) else {
        return Some("it is gone".into());
    };
    let key = current.key();
    if let Some(other) = disrupted.iter().find(|d| d.target == key && d.exercise != exercise) {
        return Some(format!("exercise {} acts on it", other.exercise));
    }
    // Each disrupted target counted once, however many faults are on it, and only while the
    // cluster still counts it: one already gone or not Ready is in `health` already.
    let mut health = health.clone();
    let mut budgets: HashMap<String, u32> = HashMap::new();
    let mut counted: Vec<&str> = Vec::new();
    for d in disrupted {
        if d.target == key || counted.contains(&d.target.as_str()) {
            continue;
        }
        counted.push(&d.target);
        let Some(other) = candidates.iter().find(|c| c.ready && c.key() == d.target) else {
            continue;
        };
        match unit {
            Unit::Pod => {
                if let Some(ready) = other.workload.as_ref().and_then(|w| health.ready_pods.get_mut(w)) {
                    *ready = ready.saturating_sub(1);
                }
                if let Some(budget) = &other.budget {
                    *budgets.entry(budget.name.clone()).or_default() += 1;
                }
            }
            Unit::Node => health.ready_nodes = health.ready_nodes.saturating_sub(1),
            Unit::Workload => {}
        }
    }
    let mut current = current.clone();
    if let Some(budget) = current.budget.as_mut() {
        let used = budgets.get(&budget.name).copied().unwrap_or(0);
        budget.disruptions_allowed = budget.disruptions_allowed.saturating_sub(used);
        // The budget's status lags: a pod deleted a moment ago still counts as healthy there.
        // The headroom from the pods as they are now, when the budget says what it needs.
        if let Some(desired) = budget.desired_healthy {
            let healthy = candidates
                .iter()
                .filter(|c| c.ready && c.budget.as_ref().is_some_and(|b| b.name == budget.name))
                .count() as u32;
            let now = healthy.saturating_sub(used).saturating_sub(desired);
            budget.disruptions_allowed = budget.disruptions_allowed.min(now);
        }
    }
    check(unit, &current, radius, &health, &[]).map(|r| r.explain())
}

fn check(
    unit: Unit,
    candidate: &Candidate,
    radius: &BlastRadius,
    health: &Health,
    chosen: &[Candidate],
) -> Option<Exclusion> {
    if candidate
        .namespace
        .as_deref()
        .is_some_and(|ns| PROTECTED_NAMESPACES.contains(&ns))
    {
        return Some(Exclusion::ProtectedNamespace);
    }
    if candidate.labels.get(super::EXCLUDE_LABEL).is_some_and(|v| v == "true") {
        return Some(Exclusion::OptedOut);
    }
    if !candidate.ready {
        return Some(Exclusion::NotReady);
    }
    if let Some(min) = radius.min_healthy {
        let left = match unit {
            Unit::Pod => {
                let workload = candidate.workload.as_deref().unwrap_or_default();
                let ready = health.ready_pods.get(workload).copied().unwrap_or(0);
                let hit = chosen.iter().filter(|c| c.workload == candidate.workload).count() as u32;
                ready.saturating_sub(hit + 1)
            }
            Unit::Node => health.ready_nodes.saturating_sub(chosen.len() as u32 + 1),
            // Scaling: what is left is decided by the fault's replicas, checked in the plan.
            Unit::Workload => u32::MAX,
        };
        if left < min {
            return Some(Exclusion::WouldBreakMinHealthy { left, min });
        }
    }
    if radius.respect_pod_disruption_budgets
        && let Some(budget) = &candidate.budget
    {
        let used = chosen
            .iter()
            .filter(|c| c.budget.as_ref().is_some_and(|b| b.name == budget.name))
            .count() as u32;
        if budget.disruptions_allowed <= used {
            return Some(Exclusion::NoBudgetHeadroom {
                budget: budget.name.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blast_radius::Budget;

    fn pod(name: &str) -> Candidate {
        Candidate {
            kind: "Pod".into(),
            namespace: Some("shop".into()),
            name: name.into(),
            uid: format!("uid-{name}"),
            labels: Default::default(),
            ready: true,
            workload: Some("Deployment/checkout".into()),
            node: None,
            budget: None,
            replicas: None,
        }
    }

    fn radius(mode: BlastRadiusMode, value: Option<u32>) -> BlastRadius {
        BlastRadius {
            mode,
            value,
            ..BlastRadius::default()
        }
    }

    fn health(ready: u32) -> Health {
        Health {
            ready_pods: [("Deployment/checkout".to_owned(), ready)].into(),
            ready_nodes: 3,
        }
    }

    fn names(cs: &[Candidate]) -> Vec<&str> {
        cs.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn the_mode_says_how_many_rounded_up_and_capped_by_what_matches() {
        let cases = [
            (BlastRadiusMode::One, None, 3, 1),
            (BlastRadiusMode::Count, Some(2), 3, 2),
            (BlastRadiusMode::Count, Some(5), 3, 3),
            (BlastRadiusMode::Percent, Some(34), 3, 2),
            (BlastRadiusMode::Percent, Some(33), 3, 1),
            (BlastRadiusMode::Percent, Some(1), 10, 1),
            (BlastRadiusMode::Percent, Some(100), 10, 10),
            (BlastRadiusMode::All, None, 7, 7),
            (BlastRadiusMode::One, None, 0, 0),
        ];
        for (mode, value, matching, expected) in cases {
            assert_eq!(
                wanted(&radius(mode, value), matching),
                expected,
                "{mode:?} {value:?} of {matching}"
            );
        }
    }

    #[test]
    fn exclusions_come_with_their_reason() {
        let mut protected = pod("kube-dns");
        protected.namespace = Some("kube-system".into());
        let mut opted_out = pod("opted");
        opted_out
            .labels
            .insert("disasterpiece.dev/exclude".into(), "true".into());
        let mut not_ready = pod("starting");
        not_ready.ready = false;
        let candidates = [protected, opted_out, not_ready, pod("a"), pod("b")];
        let decision = decide(Unit::Pod, &candidates, &radius(BlastRadiusMode::All, None), &health(5));
        assert_eq!(names(&decision.chosen), ["a", "b"]);
        let reasons: Vec<&Exclusion> = decision.excluded.iter().map(|(_, r)| r).collect();
        assert_eq!(
            reasons,
            [
                &Exclusion::ProtectedNamespace,
                &Exclusion::OptedOut,
                &Exclusion::NotReady
            ]
        );
    }

    #[test]
    fn min_healthy_stops_before_too_few_pods_are_left() {
        let candidates = [pod("a"), pod("b"), pod("c")];
        let r = BlastRadius {
            min_healthy: Some(2),
            ..radius(BlastRadiusMode::All, None)
        };
        let decision = decide(Unit::Pod, &candidates, &r, &health(3));
        assert_eq!(names(&decision.chosen), ["a"]);
        assert_eq!(
            decision.excluded[0].1,
            Exclusion::WouldBreakMinHealthy { left: 1, min: 2 }
        );
    }

    #[test]
    fn budgets_are_respected_unless_told_otherwise() {
        let budget = Budget {
            name: "checkout".into(),
            disruptions_allowed: 1,
            desired_healthy: None,
        };
        let candidates: Vec<Candidate> = ["a", "b"]
            .iter()
            .map(|n| Candidate {
                budget: Some(budget.clone()),
                ..pod(n)
            })
            .collect();
        let decision = decide(Unit::Pod, &candidates, &radius(BlastRadiusMode::All, None), &health(3));
        assert_eq!(names(&decision.chosen), ["a"]);
        assert_eq!(
            decision.excluded[0].1,
            Exclusion::NoBudgetHeadroom {
                budget: "checkout".into()
            }
        );
        let ignore = BlastRadius {
            respect_pod_disruption_budgets: false,
            ..radius(BlastRadiusMode::All, None)
        };
        assert_eq!(decide(Unit::Pod, &candidates, &ignore, &health(3)).chosen.len(), 2);
    }

    #[test]
    fn max_caps_the_count_and_says_so() {
        let candidates = [pod("a"), pod("b"), pod("c"), pod("d")];
        let r = BlastRadius {
            max: Some(2),
            ..radius(BlastRadiusMode::Percent, Some(75))
        };
        let decision = decide(Unit::Pod, &candidates, &r, &health(4));
        assert_eq!(decision.wanted, 3);
        assert_eq!(names(&decision.chosen), ["a", "b"]);
        assert_eq!(
            decision.excluded.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            [Exclusion::BeyondMax { max: 2 }, Exclusion::BeyondMax { max: 2 }]
        );
        let one = decide(Unit::Pod, &candidates, &radius(BlastRadiusMode::One, None), &health(4));
        assert_eq!(one.excluded[0].1, Exclusion::BeyondBlastRadius { count: 1 });
    }

    #[test]
    fn the_second_look_fails_closed_when_health_cannot_be_read() {
        let r = BlastRadius {
            min_healthy: Some(2),
            ..radius(BlastRadiusMode::All, None)
        };
        let pods = [pod("a"), pod("b"), pod("c")];
        assert_eq!(
            second_look(
                Unit::Pod,
                &pod("a"),
                &r,
                Ok::<_, String>((&pods, &health(3))),
                &[],
                "me"
            ),
            None
        );
        assert_eq!(
            second_look(
                Unit::Pod,
                &pod("a"),
                &r,
                Ok::<_, String>((&pods, &health(2))),
                &[],
                "me"
            ),
            Some("would leave 1 Ready, minHealthy is 2".into())
        );
        assert_eq!(
            second_look(
                Unit::Pod,
                &pod("a"),
                &r,
                Err::<(&[Candidate], &Health), String>("503 ServiceUnavailable".into()),
                &[],
                "me"
            ),
            Some("cannot read the target's health to ask again (503 ServiceUnavailable)".into())
        );
        assert_eq!(
            second_look(
                Unit::Pod,
                &pod("d"),
                &r,
                Ok::<_, String>((&pods, &health(3))),
                &[],
                "me"
            ),
            Some("it is gone".into())
        );
    }

    fn on_record(target: &str, exercise: &str) -> Disruption {
        Disruption {
            target: format!("shop/{target}"),
            exercise: exercise.into(),
        }
    }

    #[test]
    fn the_second_look_counts_what_live_exercises_have_on_record_while_it_still_looks_ready() {
        let budgeted = |name: &str| Candidate {
            budget: Some(Budget {
                name: "checkout".into(),
                disruptions_allowed: 1,
                desired_healthy: None,
            }),
            ..pod(name)
        };
        let pods = [budgeted("a"), budgeted("b"), budgeted("c")];
        let pdb = BlastRadius {
            respect_pod_disruption_budgets: true,
            ..radius(BlastRadiusMode::One, None)
        };
        let look = |target: &str, disrupted: &[Disruption]| {
            second_look(
                Unit::Pod,
                &budgeted(target),
                &pdb,
                Ok::<_, String>((&pods, &health(3))),
                disrupted,
                "me",
            )
        };
        // Another exercise is about to kill b: the budget's one disruption is its.
        assert_eq!(look("a", &[]), None);
        assert_eq!(
            look("a", &[on_record("b", "other")]),
            Some("no PodDisruptionBudget headroom (checkout)".into())
        );
        // The same pod: refused whatever the budget says.
        assert_eq!(
            look("b", &[on_record("b", "other")]),
            Some("exercise other acts on it".into())
        );
        // Two faults on one pod count once; one already gone is in the health read already.
        let minimum = BlastRadius {
            min_healthy: Some(1),
            ..radius(BlastRadiusMode::All, None)
        };
        let ready = [pod("a"), pod("b"), pod("c")];
        let min_look = |disrupted: &[Disruption]| {
            second_look(
                Unit::Pod,
                &pod("a"),
                &minimum,
                Ok::<_, String>((&ready, &health(3))),
                disrupted,
                "me",
            )
        };
        assert_eq!(min_look(&[on_record("b", "me"), on_record("b", "other")]), None);
        assert_eq!(
            min_look(&[on_record("b", "me"), on_record("c", "other")]),
            Some("would leave 0 Ready, minHealthy is 1".into())
        );
        assert_eq!(min_look(&[on_record("b", "me"), on_record("gone", "other")]), None);
        // A fault of this exercise on the same pod (a delay and a stress together) is no reason.
        assert_eq!(min_look(&[on_record("a", "me")]), None);
    }

    #[test]
    fn the_second_look_counts_budget_headroom_from_the_pods_as_they_are_not_a_lagging_status() {
        // c was killed a moment ago: the budget's status still allows one disruption, but two
        // healthy pods are left where two are needed.
        let lagging = |name: &str| Candidate {
            budget: Some(Budget {
                name: "checkout".into(),
                disruptions_allowed: 1,
                desired_healthy: Some(2),
            }),
            ..pod(name)
        };
        let pods = [lagging("a"), lagging("b")];
        let pdb = BlastRadius {
            respect_pod_disruption_budgets: true,
            ..radius(BlastRadiusMode::One, None)
        };
        assert_eq!(
            second_look(
                Unit::Pod,
                &lagging("a"),
                &pdb,
                Ok::<_, String>((&pods, &health(2))),
                &[],
                "me"
            ),
            Some("no PodDisruptionBudget headroom (checkout)".into())
        );
        let three = [lagging("a"), lagging("b"), lagging("c")];
        assert_eq!(
            second_look(
                Unit::Pod,
                &lagging("a"),
                &pdb,
                Ok::<_, String>((&three, &health(3))),
                &[],
                "me"
            ),
            None
        );
    }
}
