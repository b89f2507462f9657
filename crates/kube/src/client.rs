//! Connecting to the cluster the way kubectl does: `--kubeconfig` (else
//! `$KUBECONFIG`, else ~/.kube/config, else in-cluster), `--context`, and the
//! context's namespace as the default for `-n`.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::Error;

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
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &kc_options)
                .await
                .map_err(|e| Error::Config(e.to_string()))?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&kc_options)
            .await
            .map_err(|e| Error::Config(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| Error::Config(e.to_string()))?,
    };
    let default_namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(|e| Error::Config(e.to_string()))?;
    Ok(Cluster {
        client,
        default_namespace,
    })
}
