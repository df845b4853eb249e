//! Why a request of the controller failed, by category: the label of
//! `disasterpiece_reconcile_errors_total` and of the log line that says it.

/// The categories of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Kept back by this replica's Lease fence: it may no longer lead.
    Fenced,
    Forbidden,
    NotFound,
    Conflict,
    /// The API server failed (5xx).
    Server,
    /// Any other answer of the API server.
    Api,
    /// An answer that could not be read.
    Decode,
    /// No answer.
    Connection,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Fenced,
        Category::Forbidden,
        Category::NotFound,
        Category::Conflict,
        Category::Server,
        Category::Api,
        Category::Decode,
        Category::Connection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Fenced => "fenced",
            Category::Forbidden => "forbidden",
            Category::NotFound => "notFound",
            Category::Conflict => "conflict",
            Category::Server => "server",
            Category::Api => "api",
            Category::Decode => "decode",
            Category::Connection => "connection",
        }
    }

    pub fn of(e: &kube::Error) -> Category {
        match e {
            kube::Error::Service(e) if e.downcast_ref::<Fenced>().is_some() => Category::Fenced,
            kube::Error::Api(s) if s.code == 403 => Category::Forbidden,
            kube::Error::Api(s) if s.code == 404 => Category::NotFound,
            kube::Error::Api(s) if s.code == 409 => Category::Conflict,
            kube::Error::Api(s) if s.code >= 500 => Category::Server,
            kube::Error::Api(_) => Category::Api,
            kube::Error::SerdeError(_) => Category::Decode,
            _ => Category::Connection,
        }
    }
}

/// A write the Lease's fence (`lease::Fence`) kept back: the replica no longer knows it holds the Lease.
#[derive(Debug)]
pub struct Fenced {
    pub method: http::Method,
    pub path: String,
}

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} was not sent: this replica no longer knows it holds the lease",
            self.method, self.path
        )
    }
}

impl std::error::Error for Fenced {}
