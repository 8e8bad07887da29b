//! Where the daemon keeps its files and how it runs as a service:
//! `[registry]`, `[state]`, `[log]`, `[service]` and `[metrics]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    pub dir: PathBuf,
    /// Retention: after each promotion keep the newest this-many versions
    /// (plus the live one, the one live before it, and pinned ones); 0 keeps
    /// every version.
    pub keep_last: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            dir: PathBuf::from("/var/lib/driftd/models"),
            keep_last: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("/var/lib/driftd/state"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter; the `RUST_LOG` environment variable wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
        }
    }
}

/// How the daemon behaves as a service (signals, shutdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// On SIGTERM, how long a running update may still finish (and be
    /// promoted) before it is abandoned. Keep below the unit's TimeoutStopSec.
    pub stop_timeout_seconds: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            stop_timeout_seconds: 20,
        }
    }
}

/// The optional Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve `GET /metrics` on; off when absent.
    pub listen: Option<String>,
    /// A non-loopback `listen` address is refused unless this is true.
    pub allow_non_loopback: bool,
}

impl MetricsConfig {
    /// The address to listen on, when enabled and valid.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }
}
