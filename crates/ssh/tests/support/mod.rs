//! Test fixtures: real OpenSSH servers, client keys and ssh-agents in temp
//! directories, cleaned up (processes killed) on drop.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kcap_ssh::{AgentSource, ConnectOptions, Destination, PasswordSource};
use tempfile::TempDir;

/// Runs a command and panics with its stderr if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client key pair (ed25519 unless said otherwise) in its own directory.
pub struct Key {
    pub dir: TempDir,
    pub private: PathBuf,
}

impl Key {
    pub fn new() -> Key {
        Key::with_passphrase("")
    }

    pub fn with_passphrase(passphrase: &str) -> Key {
        let dir = TempDir::new().unwrap();
        let private = dir.path().join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                passphrase,
                "-C",
                "kcap-test",
                "-f",
            ])
            .arg(&private));
        Key { dir, private }
    }

    pub fn public_line(&self) -> String {
        std::fs::read_to_string(self.private.with_extension("pub")).unwrap()
    }
}

/// An OpenSSH server on 127.0.0.1 with a random port, killed on drop.
pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    pub child: Child,
    pub host_key_pub: PathBuf,
}

impl Sshd {
    /// A server that accepts `keys` for every user (and passwords).
    pub fn start(keys: &[&Key]) -> Sshd {
        Sshd::start_with(keys, &|_| String::new())
    }

    /// [`Sshd::start`] with more sshd_config lines, from `extra` given the
    /// server's directory (where its host key `host_ed25519` already is).
    pub fn start_with(keys: &[&Key], extra: &dyn Fn(&Path) -> String) -> Sshd {
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = TempDir::new().unwrap();
        let host_key = dir.path().join("host_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key));
        let authorized: String = keys.iter().map(|k| k.public_line()).collect();
        let auth_file = dir.path().join("authorized_keys");
        std::fs::write(&auth_file, authorized).unwrap();
        // Readable by the throwaway password-test user too.
        set_mode(dir.path(), 0o755);
        set_mode(&auth_file, 0o644);
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nUsePAM no\nPermitRootLogin yes\nPidFile none\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 AllowTcpForwarding yes\nLogLevel ERROR\n{}",
                host_key.display(),
                auth_file.display(),
                extra(dir.path())
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let sshd = Sshd {
            host_key_pub: host_key.with_extension("pub"),
            dir,
            port,
            child,
        };
        sshd.wait_ready();
        sshd
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...` for a known_hosts file.
    pub fn known_hosts_line(&self) -> String {
        let key = std::fs::read_to_string(&self.host_key_pub).unwrap();
        let mut parts = key.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    }

    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        let out = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&self.host_key_pub));
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    pub fn destination(&self, user: &str) -> Destination {
        Destination {
            user: Some(user.to_owned()),
            host: "127.0.0.1".to_owned(),
            port: Some(self.port),
        }
    }

    /// The listener and all per-connection sshd processes under it.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = vec![self.child.id() as i32];
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            pids.extend(children(parent));
            i += 1;
        }
        pids
    }

    pub fn signal_all(&self, sig: i32) {
        for pid in self.pids() {
            // SAFETY: plain syscall on a pid we started (or its children).
            unsafe { libc::kill(pid, sig) };
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Continue first in case a test stopped them, then kill the whole tree.
        self.signal_all(libc::SIGCONT);
        self.signal_all(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1) == Some(&pid.to_string()) {
            out.push(p);
        }
    }
    out
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An ssh-agent on its own socket holding `key`, killed on drop.
pub struct Agent {
    _dir: TempDir,
    pub socket: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start(key: &Key) -> Agent {
        let dir = TempDir::new().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The socket is set for ssh-add only, never process-wide.
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &socket)
            .arg("-q")
            .arg(&key.private));
        Agent {
            _dir: dir,
            socket,
            child,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options that depend on nothing in the environment: no agent, no password, no
/// ssh_config, the given key, and a known_hosts file trusting `trusted`.
pub fn options(dest: Destination, key: Option<&Key>, known_hosts: &Path) -> ConnectOptions {
    let mut o = ConnectOptions::new(dest);
    o.identity_files = key.map(|k| vec![k.private.clone()]).unwrap_or_default();
    o.known_hosts_files = vec![known_hosts.to_owned()];
    o.ssh_config = Some(known_hosts.with_file_name("no_ssh_config"));
    o.password = PasswordSource::Never;
    o.agent = AgentSource::None;
    o.key_passphrase = None;
    o.jump_hosts = Some(Vec::new());
    o.connect_timeout = Some(Duration::from_secs(10));
    o
}

/// A known_hosts file in `dir` trusting the given servers.
pub fn known_hosts(dir: &Path, servers: &[&Sshd]) -> PathBuf {
    let path = dir.join("known_hosts");
    let text: String = servers.iter().map(|s| s.known_hosts_line()).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Pids of processes whose command line contains `needle` (arguments joined by
/// spaces), zombies excluded.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.contains(needle) {
            found.push(pid);
        }
    }
    found
}
