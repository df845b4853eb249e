//! The name rules Kubernetes applies to object names, shared by `validate` and the simulator.

/// A DNS-1123 label: what Kubernetes requires of namespace and container names.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: what Kubernetes requires of most object names. Up to 253
/// characters; unlike a label, a dot-separated part is not limited to 63.
pub fn is_dns_subdomain(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    s.len() <= 253 && s.split('.').all(part)
}
