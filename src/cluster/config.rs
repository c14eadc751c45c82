//! The cluster flags and the JetStream names derived from the cluster's name.

use super::ClusterError;
use clap::Args;
use std::time::Duration;

/// The lease's time to live: a primary that stops renewing is replaced after about this long.
pub const LEASE_TTL_MS_DEFAULT: u64 = 2_000;

/// `oms serve` flags of cluster mode; all empty means single-node mode.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Cluster mode: the NATS server (with JetStream) holding the cluster's log and lease,
    /// e.g. nats://127.0.0.1:4222. Unset: single node.
    #[arg(long, env = "OMS_CLUSTER_URL")]
    pub cluster_url: Option<String>,
    /// Cluster mode: the cluster's name (letters, digits, `-`, `_`); names its stream and lease.
    #[arg(long, env = "OMS_CLUSTER_NAME", requires = "cluster_url")]
    pub cluster_name: Option<String>,
    /// Cluster mode: this node's id, unique in the cluster (letters, digits, `-`, `_`).
    #[arg(long, env = "OMS_NODE_ID", requires = "cluster_url")]
    pub node_id: Option<String>,
    /// Cluster mode: the URL clients reach this node's API at, given to clients that send a
    /// write to a standby (503 not_leader). Default: http:// and the listen address.
    #[arg(long, env = "OMS_ADVERTISE_URL", requires = "cluster_url")]
    pub advertise_url: Option<String>,
}

/// A checked cluster configuration.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub url: String,
    pub name: String,
    pub node_id: String,
    pub advertise_url: String,
    pub lease_ttl: Duration,
}

impl ClusterConfig {
    /// `None` in single-node mode; an error when cluster mode lacks a part or names are bad.
    pub fn from_args(args: &ClusterArgs, listen: &str) -> Result<Option<ClusterConfig>, String> {
        let Some(url) = args.cluster_url.clone() else {
            return Ok(None);
        };
        let name = args.cluster_name.clone().ok_or("--cluster-url needs --cluster-name")?;
        let node_id = args.node_id.clone().ok_or("--cluster-url needs --node-id")?;
        for (what, v) in [("--cluster-name", &name), ("--node-id", &node_id)] {
            if !valid_name(v) {
                return Err(format!("{what} {v:?}: 1 to 64 letters, digits, '-' or '_'"));
            }
        }
        let advertise_url = args.advertise_url.clone().unwrap_or_else(|| format!("http://{listen}"));
        Ok(Some(ClusterConfig {
            url,
            name,
            node_id,
            advertise_url,
            lease_ttl: Duration::from_millis(LEASE_TTL_MS_DEFAULT),
        }))
    }

    /// The JetStream stream holding the cluster's log.
    pub fn stream_name(&self) -> String {
        format!("OMS_{}", self.name)
    }

    /// The subject the primary publishes the log's batches on.
    pub fn subject(&self) -> String {
        format!("oms.{}.log", self.name)
    }

    /// The key-value bucket holding the lease.
    pub fn lease_bucket(&self) -> String {
        format!("oms_{}_lease", self.name)
    }

    /// Connects to NATS and makes sure the cluster's stream and lease bucket exist.
    pub async fn connect(
        &self,
    ) -> Result<(async_nats::jetstream::Context, async_nats::jetstream::stream::Stream), ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(Duration::from_secs(2)))
            .connect(self.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: self.url.clone(),
                why: e.to_string(),
            })?;
        let js = async_nats::jetstream::new(client);
        let stream = js
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: self.stream_name(),
                subjects: vec![self.subject()],
                storage: async_nats::jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(ClusterError::js)?;
        Ok((js, stream))
    }
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_without_a_url_and_every_part_needed_with_one() {
        assert!(
            ClusterConfig::from_args(&ClusterArgs::default(), "127.0.0.1:1")
                .unwrap()
                .is_none()
        );
        let mut args = ClusterArgs {
            cluster_url: Some("nats://127.0.0.1:4222".into()),
            ..Default::default()
        };
        assert!(ClusterConfig::from_args(&args, "x:1").is_err());
        args.cluster_name = Some("c1".into());
        assert!(ClusterConfig::from_args(&args, "x:1").is_err());
        args.node_id = Some("bad id".into());
        assert!(ClusterConfig::from_args(&args, "x:1").is_err());
        args.node_id = Some("a".into());
        let c = ClusterConfig::from_args(&args, "127.0.0.1:9").unwrap().unwrap();
        assert_eq!(c.advertise_url, "http://127.0.0.1:9");
        assert_eq!((c.stream_name(), c.subject()), ("OMS_c1".into(), "oms.c1.log".into()));
    }
}
