//! kcap as a kubectl plugin: `kubectl-kcap` on PATH is found by `kubectl plugin
//! list` and runs a capture as `kubectl kcap ...`; the krew manifest is well formed.

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A YAML value, as far as the manifest uses YAML: block maps, block lists,
/// plain or quoted scalars, `|` literal blocks, `#` comment lines.
#[derive(Debug, PartialEq)]
enum Yaml {
    Str(String),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> &Yaml {
        match self {
            Yaml::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no key {key:?} in {self:?}")),
            _ => panic!("{self:?} is not a map (looking for {key:?})"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Yaml::Str(s) => s,
            _ => panic!("{self:?} is not a string"),
        }
    }

    fn list(&self) -> &[Yaml] {
        match self {
            Yaml::List(items) => items,
            _ => panic!("{self:?} is not a list"),
        }
    }
}

/// Lines with their indentation; `(indent, text)`, comments and blank lines kept
/// for literal blocks.
struct Parser {
    lines: Vec<(usize, String)>,
    pos: usize,
}

impl Parser {
    fn new(text: &str) -> Parser {
        let lines = text
            .lines()
            .map(|l| {
                assert!(!l.contains('\t'), "a tab in {l:?}");
                let indent = l.len() - l.trim_start().len();
                (indent, l.trim_start().to_string())
            })
            .collect();
        Parser { lines, pos: 0 }
    }

    /// The next line that carries structure.
    fn peek(&mut self) -> Option<(usize, String)> {
        while let Some((_, text)) = self.lines.get(self.pos) {
            if text.is_empty() || text.starts_with('#') {
                self.pos += 1;
            } else {
                return self.lines.get(self.pos).cloned();
            }
        }
        None
    }

    fn block(&mut self, indent: usize) -> Yaml {
        let (_, text) = self.peek().expect("a value");
        if text == "-" || text.starts_with("- ") {
            self.list(indent)
        } else if key_value(&text).is_some() {
            self.map(indent)
        } else {
            self.pos += 1;
            Yaml::Str(scalar(&text))
        }
    }

    fn list(&mut self, indent: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some((i, text)) = self.peek() {
            if i != indent || !(text == "-" || text.starts_with("- ")) {
                assert!(i <= indent, "bad indentation: {text:?}");
                break;
            }
            let rest = text[1..].trim_start().to_string();
            if rest.is_empty() {
                self.pos += 1;
                let (next, _) = self.peek().expect("a list item");
                items.push(self.block(next));
            } else {
                // "- key: value" opens a map whose keys line up with "key".
                let inner = indent + (text.len() - rest.len());
                self.lines[self.pos] = (inner, rest);
                items.push(self.block(inner));
            }
        }
        Yaml::List(items)
    }

    fn map(&mut self, indent: usize) -> Yaml {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        while let Some((i, text)) = self.peek() {
            if i != indent || text.starts_with("- ") {
                assert!(i <= indent, "bad indentation: {text:?}");
                break;
            }
            let (key, rest) =
                key_value(&text).unwrap_or_else(|| panic!("not key: value: {text:?}"));
            assert!(
                entries.iter().all(|(k, _)| *k != key),
                "duplicate key {key:?}"
            );
            self.pos += 1;
            let value = if rest == "|" {
                let mut lines = Vec::new();
                while let Some((i, text)) = self.lines.get(self.pos) {
                    if !text.is_empty() && *i <= indent {
                        break;
                    }
                    lines.push(text.clone());
                    self.pos += 1;
                }
                Yaml::Str(lines.join("\n").trim_end().to_string() + "\n")
            } else if rest.is_empty() {
                match self.peek() {
                    Some((next, t)) if next > indent || (next == indent && t.starts_with("- ")) => {
                        self.block(next)
                    }
                    _ => Yaml::Str(String::new()),
                }
            } else {
                Yaml::Str(scalar(&rest))
            };
            entries.push((key, value));
        }
        Yaml::Map(entries)
    }
}

/// `key: value` or `key:` (a colon followed by a space or the end of the line).
fn key_value(text: &str) -> Option<(String, String)> {
    if text.starts_with(['"', '\'']) {
        return None;
    }
    let (key, rest) = match text.find(": ") {
        Some(at) => (&text[..at], &text[at + 2..]),
        None => (text.strip_suffix(':')?, ""),
    };
    Some((key.to_string(), rest.trim().to_string()))
}

fn scalar(text: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    assert!(!text.contains(" #"), "a trailing comment in {text:?}");
    text.to_string()
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn yaml_subset_parser_reads_what_it_claims() {
    let doc = Parser::new("a: 1\nb:\n  c: 'x: y'\n  d:\n  - e: 2\n    f: 3\n  - plain\ng: |\n  line one\n\n  line two\nh: \"q\"\n")
        .block(0);
    assert_eq!(doc.get("a").str(), "1");
    assert_eq!(doc.get("b").get("c").str(), "x: y");
    let d = doc.get("b").get("d").list();
    assert_eq!(d[0].get("f").str(), "3");
    assert_eq!(d[1].str(), "plain");
    assert_eq!(doc.get("g").str(), "line one\n\nline two\n");
    assert_eq!(doc.get("h").str(), "q");
}

/// plugins/kcap.yaml is a krew Plugin for this version: the fields krew requires,
/// a file name equal to the plugin's name, and a binary the archive carries.
#[test]
fn krew_plugin_manifest_is_well_formed() {
    let path = repo_file("plugins/kcap.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = Parser::new(&text).block(0);
    assert_eq!(
        doc.get("apiVersion").str(),
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(doc.get("kind").str(), "Plugin");
    let name = doc.get("metadata").get("name").str();
    assert_eq!(name, "kcap");
    assert_eq!(path.file_stem().unwrap(), name);
    let spec = doc.get("spec");
    assert_eq!(
        spec.get("version").str(),
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(spec.get("homepage").str().starts_with("https://"));
    let short = spec.get("shortDescription").str();
    assert!(!short.is_empty() && !short.contains('\n'));
    assert!(spec.get("description").str().contains("kubectl kcap"));
    let platforms = spec.get("platforms").list();
    assert!(!platforms.is_empty());
    for platform in platforms {
        let labels = platform.get("selector").get("matchLabels");
        let (os, arch) = (labels.get("os").str(), labels.get("arch").str());
        let uri = platform.get("uri").str();
        let archive = format!("kcap-{}-{os}-{arch}.tar.gz", spec.get("version").str());
        assert!(
            uri.starts_with("https://") && uri.ends_with(&format!("/{archive}")),
            "{uri}"
        );
        let sha = platform.get("sha256").str();
        assert!(
            sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "sha256 {sha:?}"
        );
        let bin = platform.get("bin").str();
        let files = platform.get("files").list();
        assert!(
            files
                .iter()
                .any(|f| f.get("from").str() == bin && f.get("to").str() == "."),
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
