//! Which hosts probes and webhooks may reach. A Scenario or GameDay names addresses its author
//! chooses; the controller would ask them from inside the cluster, with its network position:
//! a cloud's metadata service (credentials), the kubelet, anything internal. PURE but for
//! `resolve`.
//!
//! Rules, as the controller's `--allowed-probe-hosts` lists them: `name.example.com` (that
//! host), `*.example.com` (hosts below it), `10.0.0.0/8` or `10.1.2.3` (addresses), `*`
//! (any host). Link-local and metadata addresses (169.254.0.0/16, fe80::/10,
//! 100.100.100.200, fd00:ec2::254, `metadata.google.internal`…) are never reached unless a
//! rule names them or a network inside them: `*` and wider networks do not. Names are checked
//! before they are resolved and every address they resolve to after, and the address checked
//! is the one connected to (a name cannot resolve to something else between the two).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One allowed host, name suffix or network.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    Name(String),
    Suffix(String),
    Net(IpAddr, u8),
}

/// Where probes and webhooks may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    rules: Vec<Rule>,
}

/// Names of metadata services, refused unless named by a rule.
const METADATA_NAMES: [&str; 4] = [
    "metadata",
    "metadata.google.internal",
    "metadata.azure.internal",
    "instance-data",
];

/// The networks no wildcard reaches, with their prefix lengths.
fn sensitive(ip: IpAddr) -> Option<(IpAddr, u8)> {
    let nets: [(IpAddr, u8); 4] = [
        (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
        (IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)), 32),
        (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
        (IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)), 128),
    ];
    let ip = canonical(ip);
    nets.into_iter().find(|(net, len)| contains(*net, *len, ip))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Why a host may not be reached, or a rule is not one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HostError {
    #[error("`{rule}`: {why}")]
    BadRule { rule: String, why: String },
    #[error("{0} has no host")]
    NoHost(String),
    #[error(
        "{0} is a cloud metadata service, which no wildcard reaches: list it by name in the allowed hosts if a probe must ask it"
    )]
    Metadata(String),
    #[error(
        "{host} is {ip}, a link-local or metadata address, which no wildcard reaches: list {ip} in the allowed hosts if a probe must ask it"
    )]
    Sensitive { host: String, ip: IpAddr },
    #[error(
        "{0} is not an allowed probe host: this controller reaches no host a Scenario names unless its --allowed-probe-hosts (Helm controller.allowedProbeHosts) lists it"
    )]
    NoneAllowed(String),
    #[error("{0} is not an allowed probe host: add it to --allowed-probe-hosts (Helm controller.allowedProbeHosts)")]
    NotAllowed(String),
    #[error("cannot resolve {host}: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("{0} resolves to no address")]
    NoAddress(String),
}

fn parse_rule(text: &str) -> Result<Rule, HostError> {
    let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: String| HostError::BadRule {
        rule: text.clone(),
        why,
    };
    if text == "*" {
        return Ok(Rule::Any);
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains(['*', '/']) {
            return Err(bad("a wildcard is `*` or `*.example.com`".into()));
        }
        return Ok(Rule::Suffix(suffix.to_owned()));
    }
    if let Some((ip, len)) = text.split_once('/') {
        let ip: IpAddr = ip.parse().map_err(|_| bad("not a network (e.g. 10.0.0.0/8)".into()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| bad(format!("the prefix length must be 0 to {max}")))?;
        return Ok(Rule::Net(canonical(ip), len));
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
        let ip = canonical(ip);
        return Ok(Rule::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
    }
    if text.is_empty() || text.contains(['*', '/', ':', ' ']) {
        return Err(bad(
            "a host is a name (checkout.example.com), `*.example.com`, an address or a network (10.0.0.0/8), or `*`"
                .into(),
        ));
    }
    Ok(Rule::Name(text))
}

impl HostPolicy {
    /// No host at all (the controller's default: a Scenario reaches nothing the operator did
    /// not list).
    pub fn closed() -> Self {
        HostPolicy::default()
    }

    /// Any host but link-local and metadata addresses (the CLI's default: whoever runs it
    /// chose the scenario and runs it with their own network position).
    pub fn any() -> Self {
        HostPolicy { rules: vec![Rule::Any] }
    }

    /// The policy a list of rules gives; a bad rule is an error naming it.
    pub fn parse<S: AsRef<str>>(rules: &[S]) -> Result<Self, HostError> {
        let rules = rules
            .iter()
            .filter(|r| !r.as_ref().trim().is_empty())
            .map(|r| parse_rule(r.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(HostPolicy { rules })
    }

    /// Whether the rules allow the host of `url`, judged by its name or literal address.
    pub fn check_url(&self, url: &url::Url) -> Result<(), HostError> {
        let host = host_of(url).ok_or_else(|| HostError::NoHost(url.to_string()))?;
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(&host, ip),
            Err(_) => self.check_name(&host),
        }
    }

    fn check_name(&self, host: &str) -> Result<(), HostError> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let named = self.rules.iter().any(|r| *r == Rule::Name(host.clone()));
        if METADATA_NAMES.contains(&host.as_str()) {
            return if named { Ok(()) } else { Err(HostError::Metadata(host)) };
        }
        let allowed = named
            || self.rules.iter().any(|r| match r {
                Rule::Any => true,
                Rule::Suffix(s) => host.ends_with(&format!(".{s}")),
                _ => false,
            });
        if allowed { Ok(()) } else { Err(self.refusal(&host)) }
    }

    /// Whether `ip` (literal, or what `host` resolved to) may be reached.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), HostError> {
        let ip = canonical(ip);
        if let Some((_, sensitive_len)) = sensitive(ip) {
            // Only a rule as narrow as the sensitive network, or narrower, reaches it.
            let named = self
                .rules
                .iter()
                .any(|r| matches!(r, Rule::Net(net, len) if *len >= sensitive_len && contains(*net, *len, ip)));
            return if named {
                Ok(())
            } else {
                Err(HostError::Sensitive {
                    host: host.to_owned(),
                    ip,
                })
            };
        }
        let allowed = self.rules.iter().any(|r| match r {
            Rule::Any => true,
            Rule::Net(net, len) => contains(*net, *len, ip),
            Rule::Name(name) => name == host,
            Rule::Suffix(s) => host.ends_with(&format!(".{s}")),
        });
        if allowed { Ok(()) } else { Err(self.refusal(host)) }
    }

    fn refusal(&self, host: &str) -> HostError {
        if self.rules.is_empty() {
            HostError::NoneAllowed(host.to_owned())
        } else {
            HostError::NotAllowed(host.to_owned())
        }
    }

    /// Resolves the host of `url` and returns the first address the rules allow; an address
    /// refused is an error (a name that resolves to the metadata service is refused, not
    /// skipped). Connect to what this returns, never to the name again.
    pub async fn resolve(&self, url: &url::Url) -> Result<SocketAddr, HostError> {
        self.check_url(url)?;
        let host = host_of(url).ok_or_else(|| HostError::NoHost(url.to_string()))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| HostError::Unresolvable {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        for a in &addresses {
            self.check_ip(&host, a.ip())?;
        }
        addresses.into_iter().next().ok_or(HostError::NoAddress(host))
    }
}

/// The host of a URL, without the brackets of an IPv6 literal.
fn host_of(url: &url::Url) -> Option<String> {
    url.host().map(|h| match h {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &HostPolicy, url: &str) -> Result<(), HostError> {
        policy.check_url(&url::Url::parse(url).expect("url"))
    }

    #[test]
    fn closed_reaches_nothing_and_lists_allow_what_they_name() {
        assert!(check(&HostPolicy::closed(), "http://checkout.example.com/").is_err());
        let policy =
            HostPolicy::parse(&["checkout.example.com", "*.internal.example.com", "10.0.0.0/8"]).expect("rules");
        assert!(check(&policy, "http://checkout.example.com/").is_ok());
        assert!(check(&policy, "http://a.internal.example.com:9090/").is_ok());
        assert!(check(&policy, "http://internal.example.com/").is_err());
        assert!(check(&policy, "http://10.3.4.5/").is_ok());
        assert!(check(&policy, "http://11.0.0.1/").is_err());
        assert!(check(&policy, "http://evil.example.org/").is_err());
    }

    #[test]
    fn metadata_and_link_local_need_a_rule_of_their_own() {
        let any = HostPolicy::any();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://100.100.100.200/",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA/",
        ] {
            let refused = check(&any, url).expect_err(url);
            assert!(
                matches!(refused, HostError::Metadata(_) | HostError::Sensitive { .. }),
                "{refused}"
            );
            assert!(refused.to_string().contains("no wildcard"), "{refused}");
        }
        let wide = HostPolicy::parse(&["0.0.0.0/0", "169.0.0.0/8"]).expect("rules");
        assert!(check(&wide, "http://169.254.169.254/").is_err());
        let named = HostPolicy::parse(&["169.254.169.254", "metadata.google.internal"]).expect("rules");
        assert!(check(&named, "http://169.254.169.254/").is_ok());
        assert!(check(&named, "http://metadata.google.internal/").is_ok());
        assert!(check(&named, "http://169.254.1.1/").is_err());
    }

    #[test]
    fn resolved_addresses_are_checked_too() {
        let any = HostPolicy::any();
        assert!(
            any.check_ip("sneaky.example.com", "169.254.169.254".parse().expect("ip"))
                .is_err()
        );
        assert!(
            any.check_ip("fine.example.com", "203.0.113.7".parse().expect("ip"))
                .is_ok()
        );
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in ["10.0.0.0/33", "a*.example.com", "http://x/", "*./8"] {
            let e = HostPolicy::parse(&[bad]).expect_err(bad).to_string();
            assert!(e.contains('`'), "{e}");
        }
    }
}
