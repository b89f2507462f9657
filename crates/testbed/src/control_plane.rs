//! The bed's Kubernetes control plane: a `kcap_apiserver::ApiServer` whose
//! socket lives in the `control-plane` host's namespace (so the client reaches
//! it over the lan, and cutting that host's link cuts the API connection),
//! backed by the bed's [`ClusterRuntime`]; its kubeconfigs; and the endpoints
//! refresher that tells the scenario's caller pods whom to call.

use std::fs;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kcap_apiserver::{ApiServer, ClusterSpec, Features, NodeInfo, ServerOptions};

use crate::cluster::ClusterRuntime;
use crate::netns;
use crate::scenario::{self, Scenario};
use crate::spec::{API_PORT, CONTROL_PLANE};
use crate::topology::Host;

/// Starting ~10 pods takes a few seconds; a loaded machine (parallel tests)
/// needs more.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const REFRESH_EVERY: Duration = Duration::from_millis(300);

/// Files the control plane writes under the bed's directory.
pub(crate) struct Files {
    pub kubeconfig: PathBuf,
    pub restricted: PathBuf,
    /// The API server's request log (JSON lines, `kcap_apiserver::request_log`).
    pub requests: PathBuf,
    /// `ip:port,...` of the scenario's Service endpoints (read by caller pods).
    pub targets: PathBuf,
}

impl Files {
    pub fn new(dir: &Path) -> Files {
        Files {
            kubeconfig: dir.join("kubeconfig"),
            restricted: dir.join("kubeconfig-restricted"),
            requests: dir.join("api-requests.log"),
            targets: dir.join("cluster").join("targets"),
        }
    }
}

pub(crate) struct ControlPlane {
    server: Option<Arc<ApiServer>>,
    stop_refresh: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

/// Binds the API port inside the control-plane namespace, starts the server
/// with the scenario, writes the kubeconfigs and waits until every pod runs.
pub(crate) fn start(
    hosts: &[Host],
    scenario: &Scenario,
    runtime: Arc<ClusterRuntime>,
    files: &Files,
) -> Result<ControlPlane> {
    let cp = hosts
        .iter()
        .find(|h| h.name == CONTROL_PLANE)
        .context("no control-plane host")?;
    let addr = SocketAddr::new(IpAddr::V4(cp.primary_address()), API_PORT);
    // A socket keeps the namespace it was created in, whichever thread uses it.
    let listener = netns::in_netns(&cp.netns, move || TcpListener::bind(addr))?
        .with_context(|| format!("bind {addr} in {}", cp.netns))?;
    let nodes = hosts
        .iter()
        .filter_map(|h| {
            let pods = h.pods?;
            Some(NodeInfo {
                name: h.name.clone(),
                internal_ip: IpAddr::V4(h.primary_address()),
                pod_cidr: format!("{}/24", pods.pod_cidr),
                labels: Default::default(),
            })
        })
        .collect();
    let spec = ClusterSpec {
        nodes,
        namespaces: scenario::NAMESPACES.iter().map(|s| s.to_string()).collect(),
        objects: scenario::objects(scenario, &files.targets),
        features: Features {
            ephemeral_containers: scenario.ephemeral_containers,
        },
    };
    let options = ServerOptions {
        listener,
        advertise: vec![addr.ip()],
        request_log: Some(files.requests.clone()),
    };
    let server = Arc::new(ApiServer::start(spec, options, runtime)?);
    let mut cp = ControlPlane {
        server: Some(server.clone()),
        stop_refresh: None,
        refresher: None,
    };
    let (admin, restricted) = (server.admin_token(), server.restricted_token());
    write_private(
        &files.kubeconfig,
        &server.kubeconfig(admin, scenario::NAMESPACE),
    )?;
    write_private(
        &files.restricted,
        &server.kubeconfig(restricted, scenario::NAMESPACE),
    )?;
    let (tx, rx) = mpsc::channel();
    let targets = files.targets.clone();
    cp.stop_refresh = Some(tx);
    cp.refresher = Some(
        std::thread::Builder::new()
            .name("kcap-testbed-endpoints".into())
            .spawn(move || refresh_endpoints(&server, &targets, rx))?,
    );
    // On error `cp` is dropped, which stops the server and its pods.
    let server = cp.server().expect("just started");
    server.wait_ready(READY_TIMEOUT)?;
    // Callers find their targets right away, so captures on a fresh bed see
    // pod traffic rather than only the IPv6 chatter of new interfaces.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(&files.targets).ok() != Some(endpoints(server)) {
        if Instant::now() > deadline {
            bail!("{} not written", files.targets.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(cp)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// `ip:8080,...` of the running pods behind the scenario's Services.
fn endpoints(server: &ApiServer) -> String {
    let mut targets: Vec<String> = server
        .list("pods", Some(scenario::NAMESPACE))
        .iter()
        .filter(|p| {
            let app = p["metadata"]["labels"]["app"].as_str().unwrap_or("");
            scenario::ENDPOINT_APPS.contains(&app)
                && p["status"]["phase"] == "Running"
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .filter_map(|p| p["status"]["podIP"].as_str().map(|ip| format!("{ip}:8080")))
        .collect();
    targets.sort();
    targets.join(",")
}

/// Rewrites the targets file whenever the endpoints change (atomically, so a
/// caller never reads half a list), until told to stop.
fn refresh_endpoints(server: &ApiServer, path: &Path, stop: mpsc::Receiver<()>) {
    let mut last = None;
    loop {
        let now = endpoints(server);
        if last.as_ref() != Some(&now) {
            let tmp = path.with_extension("tmp");
            if fs::write(&tmp, &now)
                .and_then(|()| fs::rename(&tmp, path))
                .is_ok()
            {
                last = Some(now);
            }
        }
        match stop.recv_timeout(REFRESH_EVERY) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

impl ControlPlane {
    pub fn server(&self) -> Option<&ApiServer> {
        self.server.as_deref()
    }

    /// Stops the refresher, then the server (which stops every pod it started
    /// through the runtime). Idempotent.
    pub fn shutdown(&mut self) {
        self.stop_refresh.take();
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        if let Some(server) = self.server.take() {
            match Arc::try_unwrap(server) {
                Ok(server) => server.shutdown(),
                // Unreachable once the refresher is joined; dropping the last
                // reference elsewhere still shuts it down.
                Err(shared) => drop(shared),
            }
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown();
    }
}
