//! Addresses a Scenario names, read as the cluster reads them: shared by `validate` (which
//! checks them) and the probes (which reach them).

/// Where a cluster-DNS address lives: `(namespace, service, port)`.
pub fn service_address(url: &url::Url) -> Option<(String, String, u16)> {
    let host = url.host_str()?;
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let (service, namespace) = rest.split_once('.')?;
    Some((namespace.to_owned(), service.to_owned(), url.port().unwrap_or(80)))
}
