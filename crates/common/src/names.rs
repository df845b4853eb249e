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

/// FNV-1a: a hash that is the same across builds and platforms (unlike the standard library's),
/// for names that must be stable and short.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A DNS-1123 label made of `readable` (lowercased, anything else than a letter, digit or `-`
/// made `-`, cut so the whole fits 63 characters) and the 8 hex digits of `tag`'s hash: unique
/// per tag however long `readable` is.
pub fn label_with_hash(readable: &str, tag: &str) -> String {
    let mut cut: String = readable
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(63 - 9)
        .collect();
    while cut.ends_with('-') {
        cut.pop();
    }
    let cut = cut.trim_start_matches('-');
    format!("{cut}-{:08x}", stable_hash(tag) as u32)
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

#[cfg(test)]
mod hash_tests {
    use super::*;

    #[test]
    fn a_hashed_label_is_a_valid_unique_container_name_however_long_its_parts() {
        let long = "dp-delay-a-very-long-scenario-name-that-goes-on.and-on-20261202-054700-3f9a";
        let a = label_with_hash(long, "exercise-a/pod-1/networkDelay");
        let b = label_with_hash(long, "exercise-b/pod-1/networkDelay");
        assert!(is_dns_label(&a) && is_dns_label(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, label_with_hash(long, "exercise-a/pod-1/networkDelay"));
        assert!(a.starts_with("dp-delay-a-very-long-scenario-name"));
        assert!(is_dns_label(&label_with_hash("-Ünïcode.name-", "x")));
    }
}
