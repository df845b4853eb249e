//! Moving a scenario to another namespace (`--namespace`, a GameDay stage's `namespaces`, an
//! Exercise's `targetNamespace`): the target moves, and so does every probe that watched the
//! target's namespace, or a dev stage would scale `shop-dev` while its probes kept measuring
//! `shop`. PURE.

use super::model::{Scenario, TargetKind};

/// Moves `scenario` to namespace `to` and returns what was rewritten, said for people
/// (`probe \`answers\`: http://checkout.shop.svc/ → http://checkout.shop-dev.svc/`).
///
/// Rewritten: `kube` probes that name the target's namespace, and http probes to
/// `NAME.<target namespace>.svc` (or `….svc.cluster.local`). Probes of other namespaces are
/// left as they are (they watch something else on purpose); PromQL is never rewritten (a
/// query's labels are the author's to choose), and a Node target has no namespace to move.
pub fn retarget(scenario: &mut Scenario, to: &str) -> Vec<String> {
    if scenario.spec.target.kind == TargetKind::Node {
        return Vec::new();
    }
    let from = scenario.spec.target.namespace.replace(to.to_owned());
    let Some(from) = from.filter(|f| f != to) else {
        return Vec::new();
    };
    let mut said = Vec::new();
    let spec = &mut scenario.spec;
    let clauses = (spec
        .steady_state
        .iter_mut()
        .map(|c| (c.name.clone(), probes_mut(&mut c.http, &mut c.kube))))
    .chain(
        spec.expect
            .iter_mut()
            .map(|c| (c.name.clone(), probes_mut(&mut c.http, &mut c.kube))),
    )
    .chain(spec.abort_when.iter_mut().map(|c| {
        (
            c.name.clone().unwrap_or_else(|| "abortWhen".into()),
            probes_mut(&mut c.http, &mut c.kube),
        )
    }));
    for (name, (http, kube)) in clauses {
        if let Some(http) = http
            && let Some(moved) = moved_url(&http.url, &from, to)
        {
            said.push(format!("probe `{name}`: {} → {moved}", http.url));
            http.url = moved;
        }
        if let Some(kube) = kube
            && kube.namespace.as_deref() == Some(from.as_str())
        {
            kube.namespace = Some(to.to_owned());
            said.push(format!("probe `{name}`: namespace {from} → {to}"));
        }
    }
    said
}

type Probes<'a> = (
    Option<&'a mut super::model::HttpProbe>,
    Option<&'a mut super::model::KubeProbe>,
);

fn probes_mut<'a>(
    http: &'a mut Option<super::model::HttpProbe>,
    kube: &'a mut Option<super::model::KubeProbe>,
) -> Probes<'a> {
    (http.as_mut(), kube.as_mut())
}

/// `url` with its service's namespace `from` replaced by `to`, if it names a Service there.
fn moved_url(url: &str, from: &str, to: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_owned();
    let (service, rest) = host.split_once('.')?;
    let suffix = rest.strip_prefix(from)?;
    if !matches!(suffix, ".svc" | ".svc.cluster.local") {
        return None;
    }
    parsed.set_host(Some(&format!("{service}.{to}{suffix}"))).ok()?;
    Some(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let text = "apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: s}
spec:
  hypothesis: h
  target: {namespace: shop, kind: Deployment, name: checkout}
  faults: [{podKill: {}}]
  duration: 10s
  steadyState:
    - {name: answers, http: {url: 'http://checkout.shop.svc/healthz'}}
  expect:
    - {name: replaced, kube: {kind: Deployment, name: checkout, namespace: shop, readyReplicas: {atLeast: 3}}, within: 30s}
    - {name: defaults, kube: {readyReplicas: {atLeast: 1}}, throughout: true}
    - {name: elsewhere, http: {url: 'http://payments.billing.svc.cluster.local:8080/'}, throughout: true}
  abortWhen:
    - {name: gone, http: {url: 'http://checkout.shop.svc.cluster.local/'}}
";
        match crate::scenario::load(text, &|_| true).resources.remove(0).1 {
            crate::scenario::Resource::Scenario(s) => *s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_move_takes_the_probes_of_the_target_namespace_along() {
        let mut s = scenario();
        let said = retarget(&mut s, "shop-dev");
        assert_eq!(s.spec.target.namespace.as_deref(), Some("shop-dev"));
        let http =
            |c: &Option<crate::scenario::model::HttpProbe>| c.as_ref().map(|h| h.url.clone()).unwrap_or_default();
        assert_eq!(
            http(&s.spec.steady_state[0].http),
            "http://checkout.shop-dev.svc/healthz"
        );
        assert_eq!(
            http(&s.spec.abort_when[0].http),
            "http://checkout.shop-dev.svc.cluster.local/"
        );
        assert_eq!(
            s.spec.expect[0].kube.as_ref().and_then(|k| k.namespace.as_deref()),
            Some("shop-dev")
        );
        // Another team's service is watched on purpose; the default follows the target.
        assert_eq!(
            http(&s.spec.expect[2].http),
            "http://payments.billing.svc.cluster.local:8080/"
        );
        assert!(s.spec.expect[1].kube.as_ref().is_some_and(|k| k.namespace.is_none()));
        assert_eq!(said.len(), 3, "{said:?}");
        // Moving to where it is changes nothing.
        assert!(retarget(&mut s, "shop-dev").is_empty());
    }
}
