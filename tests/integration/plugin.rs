//! kcap as a kubectl plugin: `kubectl-kcap` on PATH is found by `kubectl plugin
//! list` and runs a capture as `kubectl kcap ...`; the krew manifest is well formed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::kube::{IMAGE, LIMIT, cluster};
use crate::util::{KCAP, assert_ok, read_capture, run, stderr};

/// A directory holding `kubectl-kcap` (a symlink to the built kcap, as krew
/// installs it) and the PATH that puts it first.
fn plugin_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(KCAP, dir.path().join("kubectl-kcap")).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let path = format!("{}:{path}", dir.path().display());
    (dir, path)
}

#[test]
fn plugin_is_listed_and_says_kubectl_kcap() {
    kcap_testbed::require_kubectl!();
    let (dir, path) = plugin_dir();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path)
        .env("HOME", home.path())
        .output()
        .expect("run kubectl");
    assert_ok(&out);
    let listed = String::from_utf8_lossy(&out.stdout);
    let exe = dir.path().join("kubectl-kcap");
    assert!(
        listed.lines().any(|l| l.trim() == exe.to_str().unwrap()),
        "kubectl plugin list:\n{listed}{}",
        stderr(&out)
    );
    // Help and usage errors name the command as typed.
    let out = Command::new("kubectl")
        .args(["kcap", "--help"])
        .env("PATH", &path)
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: kubectl kcap [OPTIONS]"), "{help}");
    assert!(
        help.contains("\n  kubectl kcap -n prod deploy/orders"),
        "{help}"
    );
    let out = Command::new("kubectl")
        .args(["kcap", "--no-such-flag"])
        .env("PATH", &path)
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Usage: kubectl kcap"),
        "{}",
        stderr(&out)
    );
    // Called as kcap, it is kcap.
    let out = Command::new(KCAP).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: kcap [OPTIONS]"));
}

/// `kubectl kcap` through kubectl's plugin mechanism captures a deployment on
/// the test bed, the cluster taken from $KUBECONFIG as kubectl users have it.
#[test]
fn kubectl_kcap_captures_through_the_plugin_mechanism() {
    kcap_testbed::require_kubectl!();
    let bed = cluster();
    let (_dir, path) = plugin_dir();
    let file = bed.path("plugin.pcapng");
    let out = run(
        bed.bed
            .client_command("kubectl")
            .args(["kcap", "-n", "prod", "deploy/web", "--image", IMAGE])
            .args(["--via", "node", "-d", "3s", "-o"])
            .arg(&file)
            .env("PATH", &path)
            .env("KUBECONFIG", bed.bed.kubeconfig())
            .env("HOME", bed.scratch.path()),
        LIMIT,
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    let mut want: Vec<String> = bed
        .pods_of("web")
        .iter()
        .map(|p| format!("prod/{p}/any"))
        .collect();
    want.sort();
    assert_eq!(names, want, "{}", stderr(&out));
    assert!(!capture.records.is_empty(), "no packets:\n{}", stderr(&out));
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A string field of the manifest by JSON pointer; panics naming it when absent.
fn text<'a>(doc: &'a Value, pointer: &str) -> &'a str {
    doc.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("plugins/kcap.yaml: no string at {pointer}"))
}

/// plugins/kcap.yaml is a krew Plugin for this version: the fields krew requires,
/// a file name equal to the plugin's name, and a binary the archive carries.
#[test]
fn krew_plugin_manifest_is_well_formed() {
    let path = repo_file("plugins/kcap.yaml");
    let source = std::fs::read_to_string(&path).unwrap();
    // serde-saphyr: the YAML parser kube-rs reads kubeconfigs with, so no new crate.
    let doc: Value = serde_saphyr::from_str(&source).expect("plugins/kcap.yaml is YAML");
    assert_eq!(
        text(&doc, "/apiVersion"),
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(text(&doc, "/kind"), "Plugin");
    let name = text(&doc, "/metadata/name");
    assert_eq!(name, "kcap");
    assert_eq!(path.file_stem().unwrap(), name);
    let version = text(&doc, "/spec/version");
    assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")));
    assert!(text(&doc, "/spec/homepage").starts_with("https://"));
    let short = text(&doc, "/spec/shortDescription");
    assert!(!short.is_empty() && !short.contains('\n'));
    assert!(text(&doc, "/spec/description").contains("kubectl kcap"));
    let platforms = doc
        .pointer("/spec/platforms")
        .and_then(Value::as_array)
        .expect("spec.platforms");
    assert!(!platforms.is_empty());
    for platform in platforms {
        let (os, arch) = (
            text(platform, "/selector/matchLabels/os"),
            text(platform, "/selector/matchLabels/arch"),
        );
        let uri = text(platform, "/uri");
        let archive = format!("kcap-{version}-{os}-{arch}.tar.gz");
        assert!(
            uri.starts_with("https://") && uri.ends_with(&format!("/{archive}")),
            "{uri}"
        );
        let sha = text(platform, "/sha256");
        assert!(
            sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "sha256 {sha:?}"
        );
        let bin = text(platform, "/bin");
        let files = platform["files"].as_array().expect("files");
        assert!(
            files
                .iter()
                .any(|f| f["from"].as_str() == Some(bin) && f["to"].as_str() == Some(".")),
            "bin {bin} is not among the files"
        );
        // A release archive made here (scripts/release) is the one the manifest names.
        let local = repo_file("dist").join(&archive);
        if local.exists() {
            let out = Command::new("sha256sum").arg(&local).output().unwrap();
            let sum = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                sum.split_whitespace().next(),
                Some(sha),
                "{}",
                local.display()
            );
        }
    }
}
