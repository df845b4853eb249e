//! What the API server said, for people: below every module that talks to it.

/// What went wrong with a request, said once: the `Status` message for API errors.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.reason.is_empty() => format!("{} ({})", status.message, status.code),
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
