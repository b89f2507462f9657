//! No secret anywhere: runs at the highest verbosity (`-vv`, `KCAP_LOG=trace`, every
//! crate's tracing on) with each kind of secret the test bed has, then greps for it
//! in everything kcap printed and wrote. The secrets: an SSH password, a private
//! key and its passphrase, the kubeconfig's bearer token, a `--serve` token.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kcap_testbed::{TEST_PASSWORD, USER_SUDO};

use crate::util::*;

const PASSPHRASE: &str = "kcap-fuzzy-passphrase-42";
const SERVE_TOKEN: &str = "kcap-serve-secret-7f3a";

/// The most kcap and its libraries will say.
fn loud(mut cmd: Command) -> Command {
    cmd.arg("-vv")
        .env("KCAP_LOG", "trace")
        .env("RUST_BACKTRACE", "1");
    cmd
}

/// Everything a run left: its stdout, its stderr and the files it wrote.
fn everything(out: &Output, files: &[&Path]) -> Vec<(String, Vec<u8>)> {
    let mut all = vec![
        ("stdout".to_string(), out.stdout.clone()),
        ("stderr".to_string(), out.stderr.clone()),
    ];
    for file in files {
        all.push((
            file.display().to_string(),
            std::fs::read(file).unwrap_or_default(),
        ));
    }
    all
}

fn assert_absent(secret: &str, what: &str, places: &[(String, Vec<u8>)]) {
    assert!(secret.len() >= 8, "{what}: too short to grep for");
    for (place, bytes) in places {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{what} appears in {place}");
    }
}

/// The base64 lines of a private key file (any one of them leaking is the key leaking).
fn key_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_string)
        .collect()
}

/// The bearer token of the bed's admin kubeconfig.
fn kube_token(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a token in the kubeconfig")
        .trim()
        .to_string()
}

#[test]
fn no_secret_appears_at_the_highest_verbosity() {
    kcap_testbed::require_kubectl!();
    let bed = crate::kube::cluster();

    // An SSH password, through sudo (the password travels twice).
    let by_password = bed.path("pw.pcapng");
    let out = run(
        loud(bed.kcap_bare())
            .args([
                "--ssh-host",
                "198.51.100.10",
                "--known-hosts",
                bed.bed.known_hosts().to_str().unwrap(),
                "-c",
                "5",
                "--ssh-user",
                USER_SUDO,
                "--sudo",
                "-o",
            ])
            .arg(&by_password)
            .env("KCAP_SSH_PASSWORD", TEST_PASSWORD),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_absent(
        TEST_PASSWORD,
        "the SSH password",
        &everything(&out, &[&by_password]),
    );

    // A passphrase-protected key (a copy of the bed's, encrypted by ssh-keygen).
    let key = bed.path("id_encrypted");
    std::fs::copy(bed.bed.client_key(), &key).unwrap();
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", PASSPHRASE, "-P", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let by_key = bed.path("key.pcapng");
    let out = run(
        loud(bed.kcap_bare())
            .args([
                "--ssh-host",
                "root@198.51.100.10",
                "--known-hosts",
                bed.bed.known_hosts().to_str().unwrap(),
                "-c",
                "5",
                "--ssh-key",
                key.to_str().unwrap(),
                "-o",
            ])
            .arg(&by_key)
            .env("KCAP_SSH_KEY_PASSPHRASE", PASSPHRASE),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    let places = everything(&out, &[&by_key]);
    assert_absent(PASSPHRASE, "the key's passphrase", &places);
    for line in key_lines(&key)
        .iter()
        .chain(&key_lines(&bed.bed.client_key()))
    {
        assert_absent(line, "a line of the private key", &places);
    }

    // The kubeconfig's bearer token, through every API call of a pod capture, and
    // the --serve token a viewer gives.
    let token = kube_token(&bed.bed.kubeconfig());
    let by_kube = bed.path("kube.pcapng");
    let out = run(
        loud(bed.kcap_kube())
            .args([
                "-n",
                "prod",
                "-l",
                "app=web",
                "-c",
                "10",
                "--serve",
                "127.0.0.1:9090",
                "--serve-token",
                SERVE_TOKEN,
                "-o",
            ])
            .arg(&by_kube),
        Duration::from_secs(90),
    );
    assert_ok(&out);
    let places = everything(&out, &[&by_kube]);
    assert_absent(&token, "the kubeconfig's bearer token", &places);
    assert_absent(SERVE_TOKEN, "the --serve token", &places);
    // The dry run prints the plan, with the kubeconfig's details: still no token.
    let out = run(
        loud(bed.kcap_kube()).args(["-n", "prod", "-l", "app=web", "--dry-run=json"]),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_absent(&token, "the bearer token (dry run)", &everything(&out, &[]));
}
