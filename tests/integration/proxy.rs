//! ssh_config as OpenSSH reads it (issue 16: "a user whose `ssh node` works must
//! find that `kcap --ssh-host node` works too"): ProxyCommand through `ssh -W` and
//! a bastion and through a plain TCP relay (socat), a failing ProxyCommand, the
//! proxy never outliving kcap, and Match blocks choosing different settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kcap_testbed::{TEST_PASSWORD, USER_SUDO};

use crate::util::*;

const NODE_A: &str = "198.51.100.10";
const NODE_B: &str = "198.51.100.11";

/// A marker unique to this bed, to find its socat relays among every test's.
fn marker(bed: &Bed) -> String {
    let name = bed.scratch.path().file_name().unwrap().to_string_lossy();
    format!("kcap-proxy-test{}", name.replace('.', "-"))
}

/// `socat` as a ProxyCommand relay, named `marker` in its log lines (`-lp`), so
/// its command line is unique.
fn relay(marker: &str) -> String {
    format!("socat -lp {marker} - TCP:%h:%p")
}

/// Pids of processes whose command line contains `needle`, kcap itself (whose
/// arguments may contain it too) excluded.
fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() != "kcap")
        })
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .collect()
}

fn wait_no_process_with(needle: &str, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kcap` in the client namespace reading `config` as its ssh_config (like
/// `Bed::kcap`, which reads the bed's own).
fn kcap_with(bed: &Bed, config: &Path) -> Command {
    let mut cmd = bed.bed.client_command(KCAP);
    cmd.arg("--ssh-config").arg(config);
    cmd.env("HOME", bed.scratch.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("KCAP_SSH_PASSWORD")
        .stdin(Stdio::null());
    cmd
}

/// ssh_config lines that log in to any bed host as root with the bed's key and
/// known_hosts, strictly.
fn common_lines(bed: &Bed) -> String {
    format!(
        "Host *\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
         GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
        bed.bed.client_key().display(),
        bed.bed.known_hosts().display(),
    )
}

fn capture_count(cmd: &mut Command, file: &Path) -> std::process::Output {
    run(
        cmd.args(["-c", "3", "-o"]).arg(file),
        Duration::from_secs(60),
    )
}

#[test]
fn proxy_command_through_ssh_w_and_a_bastion() {
    let bed = Bed::minimal();
    let file = bed.path("w.pcapng");
    // The bed's own ssh_config reaches the bastion; the real ssh does the -W.
    let proxy = format!(
        "ssh -F {} -o BatchMode=yes -W %h:%p bastion",
        bed.bed.ssh_config().display()
    );
    let out = capture_count(
        bed.kcap()
            .args(["--ssh-host", "node-a", "--proxy-command", &proxy]),
        &file,
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!(
            "connected (root@node-a ({NODE_A}:22 through ProxyCommand {proxy:?}))"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_capture(&file).records.len(), 3);
    assert_eq!(
        wait_no_process_with("-W 198.51.100.10:22 bastion", Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn proxy_command_through_a_tcp_relay_from_ssh_config() {
    let bed = Bed::minimal();
    let m = marker(&bed);
    let config = bed.path("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host relayed\n  HostName {NODE_A}\n  ProxyCommand {}\n{}",
            relay(&m),
            common_lines(&bed)
        ),
    )
    .unwrap();
    let file = bed.path("r.pcapng");
    let out = capture_count(
        kcap_with(&bed, &config).args(["--ssh-host", "relayed"]),
        &file,
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains("through ProxyCommand"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_capture(&file).records.len(), 3);
    assert_eq!(
        wait_no_process_with(&m, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn failing_proxy_command_is_a_connect_error_with_its_stderr() {
    let bed = Bed::minimal();
    let out = capture_count(
        bed.kcap().args([
            "--ssh-host",
            "node-a",
            "--proxy-command",
            "sh -c 'echo bastion.example: Name or service not known >&2; exit 255'",
        ]),
        &bed.path("f.pcapng"),
    );
    assert_exit(
        &out,
        3,
        &[
            "ProxyCommand \"sh -c 'echo bastion.example: Name or service not known >&2; exit 255'\" for node-a exited with status 255",
            "its stderr ends:\nbastion.example: Name or service not known",
            "hint: run the ProxyCommand by hand",
        ],
    );
    // A command that cannot even be found (by /bin/sh, so the wording is known).
    let out = capture_count(
        bed.kcap().env("SHELL", "/bin/sh").args([
            "--ssh-host",
            "node-a",
            "--proxy-command",
            "kcap-no-such-relay %h %p",
        ]),
        &bed.path("f.pcapng"),
    );
    assert_exit(
        &out,
        3,
        &["exited with status 127", "kcap-no-such-relay: not found"],
    );
    // Refused before anything runs.
    let out = capture_count(
        bed.kcap().args([
            "--ssh-host",
            "node-a",
            "--proxy-command",
            "nc %h %p",
            "-J",
            "bastion",
        ]),
        &bed.path("f.pcapng"),
    );
    assert_exit(&out, 2, &["--proxy-command", "--jump-host"]);
}

/// kcap capturing on node-a through `proxy` (a command line containing `m`), in a
/// process group of its own (as a shell runs a foreground job), once the capture
/// runs.
fn start_relayed(bed: &Bed, file: &Path, proxy: &str, m: &str) -> Child {
    use std::os::unix::process::CommandExt;
    let child = bed
        .kcap()
        .args(["--ssh-host", "node-a", "--proxy-command", proxy, "-o"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    assert!(
        bed.wait_capturing("node-a", Duration::from_secs(20)),
        "capture never started"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!processes_with(m).is_empty(), "no relay running");
    child
}

#[test]
fn ctrl_c_ends_the_capture_cleanly_and_the_proxy_with_it() {
    let bed = Bed::minimal();
    let m = marker(&bed);
    let file = bed.path("int.pcapng");
    let child = start_relayed(&bed, &file, &relay(&m), &m);
    // A terminal's Ctrl-C goes to the whole foreground process group. The relay is
    // in a group of its own, so the connection stays up while kcap stops the
    // capture and collects the rest.
    // SAFETY: kill(2) of the process group of our own child.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) }, 0);
    let out = wait(child, Duration::from_secs(15));
    assert_ok(&out);
    let capture = read_capture(&file);
    assert!(!capture.records.is_empty());
    assert_eq!(tshark_count(&file, None), capture.records.len());
    assert_eq!(
        wait_no_process_with(&m, Duration::from_secs(5)),
        Vec::<u32>::new(),
        "the ProxyCommand survived kcap"
    );
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(5))
            .is_empty()
    );
}

#[test]
fn sigkill_of_kcap_ends_the_proxy_too() {
    let bed = Bed::minimal();
    let m = marker(&bed);
    // A shell that would outlive the relay's end (EOF when kcap's pipes close) if
    // nothing killed it: only PR_SET_PDEATHSIG does, kcap gets no chance.
    let proxy = format!("sh -c '{}; sleep 600'", relay(&m));
    let child = start_relayed(&bed, &bed.path("kill.pcapng"), &proxy, &m);
    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = wait(child, Duration::from_secs(5));
    assert_eq!(
        wait_no_process_with(&m, Duration::from_secs(5)),
        Vec::<u32>::new(),
        "the ProxyCommand survived a SIGKILLed kcap"
    );
    assert!(
        bed.wait_capture_gone("node-a", Duration::from_secs(10))
            .is_empty()
    );
}

/// One config whose Match blocks send `picked` to node-a or node-b (Match exec on
/// a flag file) and through a ProxyCommand that names the user it matched (Match
/// host + user / !user). The proxy's stderr reaches kcap's stderr.
fn match_config(bed: &Bed) -> PathBuf {
    let flag = bed.path("use-node-b");
    let m = marker(bed);
    let config = bed.path("match_config");
    std::fs::write(
        &config,
        format!(
            "Match originalhost picked exec \"test -e {flag}\"\n  HostName {NODE_B}\n\
             Match originalhost picked\n  HostName {NODE_A}\n\
             Match host {NODE_B} user root\n  ProxyCommand sh -c 'echo matched user root for %h >&2; exec socat -lp {m} - TCP:%h:%p'\n\
             Match host {NODE_B} !user root\n  ProxyCommand sh -c 'echo matched user %r for %h >&2; exec socat -lp {m} - TCP:%h:%p'\n\
             {common}",
            flag = flag.display(),
            common = common_lines(bed),
        ),
    )
    .unwrap();
    config
}

/// What the real ssh resolves for `picked` with this config: (hostname, proxycommand).
fn ssh_g(bed: &Bed, config: &Path, user: &str) -> (String, String) {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .args(["-l", user, "picked"])
        .env("HOME", bed.scratch.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or("")
            .to_string()
    };
    (field("hostname"), field("proxycommand"))
}

#[test]
fn match_host_exec_and_user_choose_the_settings() {
    let bed = Bed::minimal();
    let config = match_config(&bed);
    let run_picked = |extra: &[&str]| {
        let mut cmd = kcap_with(&bed, &config);
        cmd.env("KCAP_SSH_PASSWORD", TEST_PASSWORD);
        capture_count(
            cmd.args(["--ssh-host", "picked"]).args(extra),
            &bed.path("m.pcapng"),
        )
    };

    // No flag file: Match exec fails, node-a directly.
    assert_eq!(
        ssh_g(&bed, &config, "root"),
        (NODE_A.to_string(), String::new())
    );
    let out = run_picked(&[]);
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("connected (root@picked ({NODE_A}:22))")),
        "{text}"
    );
    assert!(!text.contains("matched user"), "{text}");

    // Flag file: node-b, through the relay that Match user root picked.
    std::fs::write(bed.path("use-node-b"), "").unwrap();
    let (host, proxy) = ssh_g(&bed, &config, "root");
    assert_eq!(host, NODE_B);
    assert!(proxy.contains("matched user root"), "{proxy}");
    let out = run_picked(&[]);
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("root@picked ({NODE_B}:22 through ProxyCommand")),
        "{text}"
    );
    assert!(
        text.contains(&format!("matched user root for {NODE_B}\n")),
        "{text}"
    );
    assert_eq!(read_capture(&bed.path("m.pcapng")).records.len(), 3);

    // Another user (from the command line, which Match user sees first).
    let (_, proxy) = ssh_g(&bed, &config, USER_SUDO);
    assert!(proxy.contains("matched user %r"), "{proxy}");
    let out = run_picked(&["--ssh-user", USER_SUDO, "--sudo"]);
    assert_ok(&out);
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{USER_SUDO}@picked ({NODE_B}:22 through")),
        "{text}"
    );
    assert!(
        text.contains(&format!("matched user {USER_SUDO} for {NODE_B}\n")),
        "{text}"
    );
}
