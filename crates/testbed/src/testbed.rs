//! [`Testbed`]: brings a [`Spec`] up as namespaces + sshds + traffic, offers
//! the handles tests need, and tears everything down on drop.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::cleanup::TEMPDIR_PREFIX;
use crate::cluster::{self, ClusterRuntime};
use crate::control_plane::{self, ControlPlane};
use crate::spec::{Role, Spec};
use crate::state::State;
use crate::topology::{self, Host, Network};
use crate::{
    USER_NOPRIV, USER_SUDO, cleanup, keys, netns, sshconfig, sshd, status, traffic, users,
};

const SSHD_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Per-process bed counter: keeps names unique when tests run in parallel.
static COUNTER: AtomicU32 = AtomicU32::new(0);

struct Daemon {
    host: String,
    kind: &'static str,
    child: Child,
}

/// A running test bed. Dropping it removes every namespace, process and
/// generated file (unless [`Testbed::persist`] was called).
pub struct Testbed {
    dir: PathBuf,
    tempdir: Option<TempDir>,
    networks: Vec<Network>,
    hosts: Vec<Host>,
    client_netns: String,
    /// Namespaces created so far: teardown touches only these.
    namespaces: Vec<String>,
    /// Files created so far under `dir`.
    generated: Vec<PathBuf>,
    daemons: Mutex<Vec<Daemon>>,
    /// The API server (cluster specs); shut down first on teardown.
    control_plane: Option<ControlPlane>,
    /// Pods on the nodes; stopped right after the API server on teardown.
    runtime: Option<Arc<ClusterRuntime>>,
    /// Numbers kubectl cache dirs (one per command, see [`Testbed::kubectl`]).
    kubectl_runs: AtomicU32,
    persist: bool,
    torn_down: bool,
}

impl Testbed {
    /// Brings `spec` up in a fresh temp dir (removed on drop).
    pub fn up(spec: Spec) -> Result<Testbed> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tempdir = tempfile::Builder::new()
            .prefix(&format!("{TEMPDIR_PREFIX}{}-{n}-", std::process::id()))
            .tempdir()
            .context("create test bed temp dir")?;
        let dir = tempdir.path().to_path_buf();
        Self::build(spec, &dir, n, Some(tempdir))
    }

    /// Brings `spec` up with its files in `dir` (created if missing).
    pub fn up_in(spec: Spec, dir: &Path) -> Result<Testbed> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::build(spec, dir, n, None)
    }

    fn build(spec: Spec, dir: &Path, n: u32, tempdir: Option<TempDir>) -> Result<Testbed> {
        cleanup::gc_stale();
        let spec = spec.complete()?;
        let prefix = spec
            .name_prefix
            .clone()
            .unwrap_or_else(|| format!("kcap-{}-{n}", std::process::id()));
        fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let (networks, hosts) = topology::plan(&spec, &prefix, &dir);
        let planned = networks
            .iter()
            .map(|n| &n.netns)
            .chain(hosts.iter().map(|h| &h.netns));
        for ns in planned {
            if netns::exists(ns) {
                bail!(
                    "network namespace {ns} already exists: is a bed already up? (`kcap-testbed down --dir ...`)"
                );
            }
        }
        let client_netns = hosts
            .iter()
            .find(|h| h.role == Role::Client)
            .expect("validated")
            .netns
            .clone();
        let mut tb = Testbed {
            dir,
            tempdir,
            networks,
            hosts,
            client_netns,
            namespaces: Vec::new(),
            generated: Vec::new(),
            daemons: Mutex::new(Vec::new()),
            control_plane: None,
            runtime: None,
            kubectl_runs: AtomicU32::new(0),
            persist: false,
            torn_down: false,
        };
        // On error `tb` is dropped here, which tears down the partial bed.
        let files = control_plane::Files::new(&tb.dir);
        for f in [files.kubeconfig, files.requests, tb.kubectl_dir()] {
            if spec.api_server.is_some() && f.exists() {
                bail!("{} exists: is a bed already up there?", f.display());
            }
        }
        tb.bring_up(spec.traffic)
            .context("bringing up the test bed")?;
        let runtime = Arc::new(ClusterRuntime::new(&tb.dir, &prefix, &tb.hosts));
        tb.runtime = Some(runtime.clone());
        if let Some(scenario) = &spec.api_server {
            tb.start_control_plane(scenario, runtime)
                .context("starting the Kubernetes API server")?;
        }
        Ok(tb)
    }

    fn start_control_plane(
        &mut self,
        scenario: &crate::Scenario,
        runtime: Arc<ClusterRuntime>,
    ) -> Result<()> {
        let files = control_plane::Files::new(&self.dir);
        // Recorded before writing: these names are ours (see `build`'s check).
        self.generated.extend([
            files.kubeconfig.clone(),
            files.restricted.clone(),
            files.requests.clone(),
            self.kubectl_dir(),
        ]);
        self.save_state()?;
        fs::create_dir_all(self.kubectl_dir())?;
        self.control_plane = Some(control_plane::start(
            &self.hosts,
            scenario,
            runtime,
            &files,
        )?);
        self.save_state()
    }

    fn bring_up(&mut self, with_traffic: bool) -> Result<()> {
        users::ensure()?;
        // Unprivileged users must read DIR/authorized_keys/<user>.
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755))?;
        self.generated.push(State::path(&self.dir));
        for i in 0..self.networks.len() {
            let ns = self.networks[i].netns.clone();
            netns::add(&ns)?;
            self.namespaces.push(ns);
            self.save_state()?;
            topology::build_switch(&self.networks[i])?;
        }
        for i in 0..self.hosts.len() {
            let ns = self.hosts[i].netns.clone();
            netns::add(&ns)?;
            self.namespaces.push(ns);
            self.save_state()?;
        }
        for h in &self.hosts {
            for link in &h.links {
                topology::build_link(h, link)?;
            }
        }
        cluster::setup_nodes(&self.hosts)?;
        self.write_keys_and_configs()?;
        self.save_state()?;
        self.start_daemons(with_traffic)?;
        self.save_state()?;
        self.wait_for_sshds()?;
        self.save_state()
    }

    fn write_keys_and_configs(&mut self) -> Result<()> {
        let key = self.client_key();
        self.generated
            .extend([key.clone(), key.with_extension("pub")]);
        keys::generate(&key, "ed25519", "kcap-testbed client")?;
        let pubkey = fs::read_to_string(key.with_extension("pub"))?;
        let auth = self.dir.join("authorized_keys");
        self.generated.push(auth.clone());
        fs::create_dir_all(&auth)?;
        fs::set_permissions(&auth, fs::Permissions::from_mode(0o755))?;
        for user in ["root", USER_SUDO, USER_NOPRIV] {
            let p = auth.join(user);
            fs::write(&p, &pubkey)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
        }
        for h in &self.hosts {
            self.generated.push(h.dir.clone());
            topology::create_host_dir(h)?;
            if h.has_sshd() {
                keys::generate_host_keys(h)?;
                sshd::write_config(h, &auth)?;
                sshd::write_hosts_file(h, &self.hosts)?;
            }
        }
        // Recorded only once written: a failed write must not make teardown
        // delete something that was there before.
        fs::write(self.known_hosts(), keys::known_hosts(&self.hosts)?)
            .context("write known_hosts")?;
        self.generated.push(self.known_hosts());
        fs::write(
            self.ssh_config(),
            sshconfig::render(&self.hosts, &key, &self.known_hosts()),
        )
        .context("write ssh_config")?;
        self.generated.push(self.ssh_config());
        Ok(())
    }

    fn start_daemons(&mut self, with_traffic: bool) -> Result<()> {
        // Pod files first: node sshds bind-mount crictl's directory at start.
        let cluster_dir = self.dir.join("cluster");
        if !cluster_dir.exists() {
            // Checked absent, so whatever is there after a failed install is ours.
            self.generated.push(cluster_dir);
        }
        ClusterRuntime::install(&self.dir, &self.hosts).context("install pod runtime files")?;
        let script = self.dir.join("traffic.py");
        if with_traffic {
            self.generated.push(script.clone());
            traffic::install(&self.dir)?;
        }
        let daemons = self.daemons.get_mut().unwrap_or_else(|e| e.into_inner());
        for h in &self.hosts {
            if h.has_sshd() {
                let child = sshd::start(h)?;
                daemons.push(Daemon {
                    host: h.name.clone(),
                    kind: "sshd",
                    child,
                });
            }
            if with_traffic && let Some(child) = traffic::start(h, &self.hosts, &script)? {
                daemons.push(Daemon {
                    host: h.name.clone(),
                    kind: "traffic",
                    child,
                });
            }
        }
        Ok(())
    }

    /// Waits for all sshds in parallel (each check joins the host namespace).
    fn wait_for_sshds(&mut self) -> Result<()> {
        let hosts = &self.hosts;
        let daemons = self.daemons.get_mut().unwrap_or_else(|e| e.into_inner());
        thread::scope(|s| {
            let waits: Vec<_> = daemons
                .iter_mut()
                .filter(|d| d.kind == "sshd")
                .map(|d| {
                    let host = hosts.iter().find(|h| h.name == d.host).expect("own host");
                    s.spawn(move || sshd::wait_ready(host, &mut d.child, SSHD_READY_TIMEOUT))
                })
                .collect();
            waits
                .into_iter()
                .try_for_each(|w| w.join().expect("wait thread panicked"))
        })
    }

    fn state(&self) -> State {
        let daemons = self.daemons.lock().unwrap_or_else(|e| e.into_inner());
        State {
            owner_pid: std::process::id(),
            dir: self.dir.clone(),
            client_netns: self.client_netns.clone(),
            namespaces: self.namespaces.clone(),
            networks: self.networks.clone(),
            hosts: self.hosts.clone(),
            pids: daemons
                .iter()
                .map(|d| (d.host.clone(), d.kind.to_string(), d.child.id()))
                .collect(),
            generated: self.generated.clone(),
        }
    }

    fn save_state(&self) -> Result<()> {
        self.state().save()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The container runtime of the bed's nodes: starts pods (needs nodes with a
    /// pod network, see [`Spec::cluster`], except for hostNetwork pods), execs,
    /// ephemeral containers. Pods die with the bed.
    pub fn runtime(&self) -> Arc<ClusterRuntime> {
        self.runtime
            .clone()
            .expect("a bed that is up has a runtime")
    }

    /// The API server of a cluster bed ([`Spec::cluster`]), reachable from the
    /// client namespace at `https://198.51.100.5:6443`; `None` without one.
    pub fn api_server(&self) -> Option<&kcap_apiserver::ApiServer> {
        self.control_plane.as_ref().and_then(|cp| cp.server())
    }

    /// `DIR/kubeconfig`: the admin user, default namespace `prod`.
    pub fn kubeconfig(&self) -> PathBuf {
        control_plane::Files::new(&self.dir).kubeconfig
    }

    /// `DIR/kubeconfig-restricted`: a read-only user (get/list/watch; exec,
    /// attach, debug, delete and scale are refused with 403).
    pub fn restricted_kubeconfig(&self) -> PathBuf {
        control_plane::Files::new(&self.dir).restricted
    }

    /// `DIR/api-requests.log`, the API server's request log; see
    /// [`Testbed::api_requests`].
    pub fn api_requests_log(&self) -> PathBuf {
        control_plane::Files::new(&self.dir).requests
    }

    /// What clients asked the API server to change or run so far, oldest first:
    /// every POST, PUT, PATCH and DELETE, every exec and attach (also as a
    /// WebSocket GET), and every SelfSubjectAccessReview (kind
    /// [`RequestKind::AccessReview`], which changes nothing), with the user, the
    /// verb/resource/subresource/namespace/name and the status answered. Reads
    /// (get, list, watch) are not in it. Panics on a bed without an API server
    /// or an unreadable log.
    ///
    /// [`RequestKind::AccessReview`]: crate::RequestKind::AccessReview
    pub fn api_requests(&self) -> Vec<crate::ApiRequest> {
        assert!(
            self.control_plane.is_some(),
            "this test bed has no API server (see Spec::cluster)"
        );
        kcap_apiserver::request_log::read(&self.api_requests_log())
            .unwrap_or_else(|e| panic!("{:#}", anyhow::Error::new(e)))
    }

    fn kubectl_dir(&self) -> PathBuf {
        self.dir.join("kubectl")
    }

    /// The real kubectl in the client namespace with the admin kubeconfig; see
    /// [`Testbed::kubectl_with`].
    pub fn kubectl(&self) -> Command {
        self.kubectl_with("kubectl", &self.kubeconfig())
    }

    /// `program` (`kubectl`, a versioned binary such as `kubectl.1.31` found
    /// next to the real kubectl, or a path) in the client namespace with
    /// `--kubeconfig KUBECONFIG` and a cache dir of its own: kubectl caches
    /// discovery per server, and runs sharing a cache race on it. HOME points
    /// into the bed's directory so nothing is written to the caller's home.
    pub fn kubectl_with(&self, program: impl AsRef<OsStr>, kubeconfig: &Path) -> Command {
        let program = program.as_ref();
        let program = if program == "kubectl" || Path::new(program).components().count() > 1 {
            PathBuf::from(program)
        } else {
            kubectl_bin_dir().join(program)
        };
        let n = self.kubectl_runs.fetch_add(1, Ordering::Relaxed);
        let cache = self.kubectl_dir().join(format!("cache-{n}"));
        let mut cmd = self.client_command(program);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .env("KUBECACHEDIR", &cache)
            .env("HOME", self.kubectl_dir());
        cmd
    }

    pub fn client_netns(&self) -> &str {
        &self.client_netns
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// A Command that runs `program` inside the client namespace
    /// (`ip netns exec NS program`).
    pub fn client_command(&self, program: impl AsRef<OsStr>) -> Command {
        netns::command(&self.client_netns, program)
    }

    /// The host called `name`; panics with the list of hosts if unknown.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
                panic!("no host {name:?} in this test bed; hosts: {names:?}")
            })
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    /// Runs `sh -c shell` inside a host's namespace and returns its Output.
    pub fn run_on(&self, host: &str, shell: &str) -> Result<Output> {
        let h = self.host(host);
        netns::command(&h.netns, "sh")
            .args(["-c", shell])
            .output()
            .with_context(|| format!("run {shell:?} on {host}"))
    }

    /// PIDs of processes in a host's namespace whose `/proc/PID/comm` is `comm`.
    pub fn processes_named(&self, host: &str, comm: &str) -> Vec<u32> {
        netns::pids(&self.host(host).netns)
            .into_iter()
            .filter(|&pid| netns::comm(pid).as_deref() == Some(comm))
            .collect()
    }

    /// Replaces a host's sshd host keys with fresh ones and restarts its sshd
    /// (known_hosts is left alone: the point is a "changed host key").
    pub fn rotate_host_key(&self, host: &str) -> Result<()> {
        self.restart_sshd(host, keys::generate_host_keys)
    }

    /// Puts `settings` (sshd_config lines) at the top of a host's sshd_config,
    /// where they win over the bed's own (sshd takes the first value of a
    /// keyword), and restarts its sshd: e.g. `HostCertificate` and
    /// `TrustedUserCAKeys` for a node that only speaks SSH certificates.
    pub fn reconfigure_sshd(&self, host: &str, settings: &str) -> Result<()> {
        self.restart_sshd(host, |h| {
            let path = h.dir.join("sshd_config");
            let old = std::fs::read_to_string(&path)?;
            std::fs::write(&path, format!("{}\n{old}", settings.trim_end()))?;
            Ok(())
        })
    }

    /// Stops a host's sshd, runs `prepare`, starts it again and waits for it.
    fn restart_sshd(&self, host: &str, prepare: impl FnOnce(&Host) -> Result<()>) -> Result<()> {
        let h = self.host(host);
        if !h.has_sshd() {
            bail!("{host} runs no sshd");
        }
        {
            let mut daemons = self.daemons.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pos) = daemons
                .iter()
                .position(|d| d.host == host && d.kind == "sshd")
            {
                let mut old = daemons.remove(pos);
                let _ = old.child.kill();
                let _ = old.child.wait();
            }
            prepare(h)?;
            let mut child = sshd::start(h)?;
            let ready = sshd::wait_ready(h, &mut child, SSHD_READY_TIMEOUT);
            // Track it even if it failed, so teardown reaps it.
            daemons.push(Daemon {
                host: host.to_string(),
                kind: "sshd",
                child,
            });
            ready?;
        }
        self.save_state()
    }

    /// Reboots a host: its cables are cut and every process in its namespace is
    /// killed (sshd and its sessions, captures, traffic, hostNetwork pods); on a
    /// cluster bed its pods stop. After `down` the cables come back, its daemons
    /// start again (sshd answering before this returns), and its pods start again
    /// in place with new containers, as a kubelet starts them after a reboot.
    pub fn reboot(&self, host: &str, down: Duration) -> Result<()> {
        let h = self.host(host);
        self.cut_link(host)?;
        let mut stopped: Vec<Daemon> = {
            let mut daemons = self.daemons.lock().unwrap_or_else(|e| e.into_inner());
            let (theirs, others) = std::mem::take(&mut *daemons)
                .into_iter()
                .partition(|d| d.host == host);
            *daemons = others;
            theirs
        };
        netns::kill_all(&h.netns)?;
        for d in &mut stopped {
            let _ = d.child.wait();
        }
        if let Some(api) = self.api_server() {
            api.node_down(host);
        }
        thread::sleep(down);
        self.restore_link(host)?;
        for kind in stopped.iter().map(|d| d.kind) {
            let child = match kind {
                "sshd" => sshd::start(h)?,
                "traffic" => match traffic::start(h, &self.hosts, &self.dir.join("traffic.py"))? {
                    Some(child) => child,
                    None => continue,
                },
                other => bail!("{host}: cannot start a {other} again"),
            };
            let mut daemons = self.daemons.lock().unwrap_or_else(|e| e.into_inner());
            daemons.push(Daemon {
                host: host.to_string(),
                kind,
                child,
            });
            if kind == "sshd" {
                let d = daemons.last_mut().expect("just pushed");
                sshd::wait_ready(h, &mut d.child, SSHD_READY_TIMEOUT)?;
            }
        }
        if let Some(api) = self.api_server() {
            api.node_up(host);
        }
        self.save_state()
    }

    /// Cuts every cable of a host (its ports on the bridges go down, so
    /// packets vanish silently, like a pulled cable or a dead node).
    pub fn cut_link(&self, host: &str) -> Result<()> {
        self.set_links(host, "down")
    }

    pub fn restore_link(&self, host: &str) -> Result<()> {
        self.set_links(host, "up")
    }

    fn set_links(&self, host: &str, state: &str) -> Result<()> {
        for link in &self.host(host).links {
            netns::ip(["-n", &link.switch_netns, "link", "set", &link.peer, state])?;
        }
        Ok(())
    }

    /// Leaves everything running when this value is dropped; `kcap-testbed
    /// down` (or [`Testbed::down_dir`]) removes it later.
    pub fn persist(mut self) {
        if let Some(t) = self.tempdir.take() {
            let _ = t.keep();
        }
        self.persist = true;
        if let Err(e) = self.save_state() {
            eprintln!("kcap-testbed: cannot save state: {e:#}");
        }
    }

    /// Tears down now and reports problems (Drop does the same silently).
    pub fn down(mut self) -> Result<()> {
        self.teardown()
    }

    /// Tears down the bed described by `DIR/state.json` (made by any process).
    pub fn down_dir(dir: &Path) -> Result<()> {
        let state = State::load(dir)?;
        // Pod namespaces first (hostNetwork pods die with their node namespace).
        let cri = cluster::cri_state_path(&dir.join("cluster"));
        if let Ok(pods) = cluster::load_cri_state(&cri) {
            for ns in pods.pods.iter().filter_map(|p| p.netns_name.as_ref()) {
                let _ = netns::kill_all(ns);
                let _ = netns::delete(ns);
            }
        }
        cleanup::teardown(&state.namespaces, &state.generated)?;
        // Only succeeds if nothing but our files were in there.
        let _ = fs::remove_dir(dir);
        Ok(())
    }

    /// Human-readable status of the bed in `dir` (hosts, namespaces,
    /// addresses, whether each sshd is alive).
    pub fn status_dir(dir: &Path) -> Result<String> {
        status::report(&State::load(dir)?)
    }

    fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        // The API server first: it stops its pods through the runtime, and
        // must not start new ones while the runtime shuts down.
        if let Some(mut cp) = self.control_plane.take() {
            cp.shutdown();
        }
        if let Some(rt) = &self.runtime {
            rt.shutdown();
        }
        let mut daemons = std::mem::take(self.daemons.get_mut().unwrap_or_else(|e| e.into_inner()));
        for d in &mut daemons {
            let _ = d.child.kill();
        }
        let result = cleanup::teardown(&self.namespaces, &self.generated);
        // Reap our children so no zombies linger until the test process exits.
        for d in &mut daemons {
            let _ = d.child.wait();
        }
        if let Some(t) = self.tempdir.take() {
            t.close().context("remove test bed dir")?;
        }
        result
    }
}

/// Where the versioned kubectl binaries live: beside the real kubectl that
/// the `kubectl` on PATH (a version dispatcher) resolves to.
fn kubectl_bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    let real = fs::canonicalize(&on_path).unwrap_or(on_path);
    real.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.persist {
            return;
        }
        if let Err(e) = self.teardown() {
            eprintln!("kcap-testbed: {e:#}");
        }
    }
}
