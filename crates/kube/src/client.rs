//! Connecting to the cluster the way kubectl does: `--kubeconfig` (else
//! `$KUBECONFIG`, else ~/.kube/config, else in-cluster), `--context`, and the
//! context's namespace as the default for `-n`.
//!
//! kube-rs's own client stack, with one change: its TCP connections notice a dead
//! link. A capture streams through one long-lived WebSocket per pod, and kcap writes
//! a heartbeat on it every second; without a bound, a pulled cable or an unreachable
//! API server would leave those writes unacknowledged for the kernel's retransmission
//! limit (about 15 minutes) while the pod's capture has long stopped (the wrapper ends
//! it 5 s after the heartbeat stops). With `TCP_USER_TIMEOUT` and keepalives the
//! connection fails after [`LINK_TIMEOUT`], the stream ends with "connection lost"
//! and kcap cleans up. Answers are bounded in size and time (`answer_limits.rs`).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::{BoxError, ServiceBuilder};

use crate::Error;
use crate::answer_limits::AnswerLimits;

/// How long data sent to the API server may stay unacknowledged (or an idle
/// connection unanswered to keepalives) before the connection counts as lost.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before the first keepalive probe, and between probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// `--kubeconfig` and `--context`.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
}

/// A client and the namespace `-n` defaults to.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub default_namespace: String,
}

pub async fn connect(options: &ClientOptions) -> Result<Cluster, Error> {
    let kc_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| Error::Config {
                path: Some(path.clone()),
                source: Arc::new(e),
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &kc_options)
                .await
                .map_err(config_error)?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kc_options)
            .await
            .map_err(config_error)?,
        None => Config::infer().await.map_err(config_error)?,
    };
    let default_namespace = config.default_namespace.clone();
    let client = build(config).map_err(config_error)?;
    Ok(Cluster {
        client,
        default_namespace,
    })
}

/// A configuration that was read but cannot be used (no such context, no
/// cluster URL, a client certificate that does not load, ...).
fn config_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Config {
        path: None,
        source: Arc::new(e),
    }
}

/// kube-rs's default stack (TLS, timeouts, base URI, auth, extra headers) over a
/// connector with [`LINK_TIMEOUT`]. Through a proxy (`proxy-url`), kube-rs builds
/// the connector itself and the kernel's defaults apply.
fn build(config: Config) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() {
        return Client::try_from(config);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_tcp_user_timeout(Some(LINK_TIMEOUT));
    tcp.set_keepalive(Some(KEEPALIVE_IDLE));
    tcp.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    tcp.set_keepalive_retries(Some(3));
    let tls = config.rustls_https_connector_with_connector(tcp)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(tls);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(AnswerLimits::new(http));
    Ok(Client::new(service, config.default_namespace))
}
