//! `--bus` and its settings.

use std::time::Duration;

/// `--bus` and its settings.
#[derive(Clone)]
pub struct BusConfig {
    /// The Redis URL (may hold a password: never logged).
    pub url: String,
    /// How long a node's members, names and heartbeat outlive its last refresh.
    pub presence_ttl: Duration,
}

/// Leaves the URL out, so that printing a configuration cannot leak a Redis password.
impl std::fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &"<redacted>")
            .field("presence_ttl", &self.presence_ttl)
            .finish()
    }
}

impl BusConfig {
    /// The bus settings from the flag/file values; `None` without `--bus`.
    pub fn resolve(url: Option<String>, ttl: Option<f64>) -> Result<Option<BusConfig>, String> {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return match ttl {
                Some(_) => Err("bus_presence_ttl needs bus".into()),
                None => Ok(None),
            };
        };
        if !url.starts_with("redis://") {
            return Err("bus must be a redis://HOST:PORT/DB URL".into());
        }
        // The error names the problem, not the URL (it may carry a password).
        redis::Client::open(url.as_str()).map_err(|e| format!("bus URL is invalid: {e}"))?;
        let ttl = ttl.unwrap_or(30.0);
        if !(ttl.is_finite() && (1.0..=3600.0).contains(&ttl)) {
            return Err(format!(
                "bus_presence_ttl {ttl} must be in [1, 3600] seconds"
            ));
        }
        Ok(Some(BusConfig {
            url,
            presence_ttl: Duration::from_secs_f64(ttl),
        }))
    }

    /// Whole seconds of the TTL, as Redis takes them.
    pub fn ttl_secs(&self) -> u64 {
        self.presence_ttl.as_secs().max(1)
    }

    /// How often a node refreshes its heartbeat, members and names: a third of the TTL (so two
    /// refreshes can fail before the TTL runs out), between 200 ms and 10 s.
    pub fn refresh_every(&self) -> Duration {
        (self.presence_ttl / 3).clamp(Duration::from_millis(200), Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::BusConfig;

    #[test]
    fn debug_output_never_shows_the_url() {
        let cfg = BusConfig::resolve(Some("redis://:s3cret@127.0.0.1:6379/0".into()), None)
            .unwrap()
            .unwrap();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("presence_ttl"), "{shown}");
        let err =
            BusConfig::resolve(Some("http://:s3cret@example.com/0".into()), None).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
