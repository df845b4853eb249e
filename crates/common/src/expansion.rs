//! Kubernetes' expansion of a container's `command` and `args` (and env values): `$(VAR)` is
//! replaced by the variable's value when the container defines it, and kept as written when
//! not; `$$` becomes `$`; anything else is kept. A shell script passed as an argument goes
//! through this before the shell sees it, so a script's own `$` must be written `$$`
//! ([`escape`]). As Kubernetes' `third_party/forked/golang/expansion` does it.

/// `input` as the kubelet passes it to the process, with `lookup` giving the container's
/// environment.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.chars().next() {
            // `$$`: an escaped `$`.
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            // `$(NAME)`: the variable, or the reference as written when it is not defined.
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => out.push_str(&rest[at..at + 1 + close + 1]),
                    }
                    rest = &after[close + 1..];
                }
                // No closing parenthesis: `$(` kept as written, the rest read on.
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            // A lone `$`, or `$` before anything else: kept.
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` written so that [`expand`] gives it back unchanged, whatever the environment.
pub fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "FOO").then(|| "bar".to_owned())
    }

    #[test]
    fn expands_as_the_kubelet_does() {
        for (input, want) in [
            ("$(FOO)", "bar"),
            ("x$(FOO)y", "xbary"),
            ("$(NOPE)", "$(NOPE)"),
            ("$$", "$"),
            ("$$(FOO)", "$(FOO)"),
            ("$$$(FOO)", "$bar"),
            ("echo $$ > /tmp/pid", "echo $ > /tmp/pid"),
            ("$(cat /tmp/pid)", "$(cat /tmp/pid)"),
            ("$FOO ${FOO}", "$FOO ${FOO}"),
            ("$(FOO", "$(FOO"),
            ("$(FOO $$", "$(FOO $"),
            ("end $", "end $"),
            ("", ""),
        ] {
            assert_eq!(expand(input, env), want, "{input}");
        }
    }

    #[test]
    fn an_escaped_text_comes_back_unchanged() {
        for text in [
            "echo $$ > /tmp/disasterpiece.pid",
            "left=$((A - $(date +%s)))",
            "kill $pids; x=$(FOO) $$$",
            "no dollars",
        ] {
            assert_eq!(expand(&escape(text), env), text);
        }
    }
}
