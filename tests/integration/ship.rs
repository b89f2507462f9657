//! What a user gets besides captures: `--version`, shell completions, the man page.

use std::process::{Command, Output};

use crate::util::{KCAP, assert_exit, assert_ok};

/// `kcap --version` names the version, the commit it was built from (what git says
/// of this checkout, "unknown" without git) and the build date.
#[test]
fn version_names_commit_and_date() {
    let out = Command::new(KCAP).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let prefix = format!(
        "kcap {} (commit {commit}, built ",
        env!("CARGO_PKG_VERSION")
    );
    let date = text
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?} is not {prefix:?}DATE)"));
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3
            && [4, 2, 2]
                .iter()
                .zip(&parts)
                .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_digit())),
        "build date {date:?} is not YYYY-MM-DD"
    );
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let expected = Command::new("date")
            .args(["-u", "-d", &format!("@{epoch}"), "+%F"])
            .output()
            .unwrap();
        assert_eq!(date, String::from_utf8_lossy(&expected.stdout).trim());
    }
}

fn kcap_ok(args: &[&str]) -> String {
    let out = Command::new(KCAP).args(args).output().unwrap();
    assert_ok(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a bash script with the generated completion script sourced.
fn bash_with_completions(script: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kcap.bash");
    std::fs::write(&file, kcap_ok(&["completions", "bash"])).unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(format!("source {}\n{script}", file.display()))
        .output()
        .expect("run bash")
}

/// The words bash's completion function offers for a command line whose last
/// word is being completed.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let out = bash_with_completions(&format!(
        "COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _kcap kcap '{cur}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = quoted.join(" "),
        line = words.join(" "),
        cur = words[cword],
    ));
    assert_ok(&out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// The bash script registers a completion function for kcap (`complete -p`) that
/// completes flags, the values of enumerated ones and the first-word commands.
#[test]
fn bash_completion_offers_flags() {
    let out = bash_with_completions("complete -p kcap");
    assert_ok(&out);
    let registered = String::from_utf8_lossy(&out.stdout);
    assert!(registered.contains("-F _kcap"), "{registered}");
    assert_eq!(bash_complete(&["kcap", "--dur"]), ["--duration"]);
    let ssh = bash_complete(&["kcap", "--ssh-h"]);
    assert_eq!(ssh, ["--ssh-host"]);
    let first = bash_complete(&["kcap", "com"]);
    assert!(first.contains(&"completions".to_string()), "{first:?}");
    let shells = bash_complete(&["kcap", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.contains(&shell.to_string()), "{shells:?}");
    }
    // compgen over the word list the function offered agrees.
    let out = bash_with_completions(
        "COMP_WORDS=(kcap --dry)\nCOMP_CWORD=1\n_kcap kcap --dry kcap\n\
         compgen -W \"${COMPREPLY[*]}\" -- --dry-",
    );
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "--dry-run");
}

/// zsh and fish scripts are generated from the same flags (and parse, where the
/// shell is installed).
#[test]
fn zsh_and_fish_completions_name_the_flags() {
    let zsh = kcap_ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef kcap"), "{}", &zsh[..80]);
    assert!(zsh.contains("--duration"));
    let fish = kcap_ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c kcap") && fish.contains("-l duration"));
    for (shell, script) in [("zsh", &zsh), ("fish", &fish)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(shell);
        std::fs::write(&file, script).unwrap();
        match Command::new(shell).arg("-n").arg(&file).output() {
            Ok(out) => assert_ok(&out),
            Err(_) => eprintln!("{shell} not installed: its script's syntax not checked"),
        }
    }
    let out = Command::new(KCAP)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_exit(&out, 2, &["tcsh"]);
}

/// `kcap man` is a man page: NAME, SYNOPSIS, every flag; man renders it.
#[test]
fn man_page_has_name_synopsis_and_flags() {
    let page = kcap_ok(&["man"]);
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
        assert!(page.contains(section), "no {section}");
    }
    assert!(page.contains("kcap \\- Capture packets"));
    for flag in ["duration", "ssh\\-host", "dry\\-run", "kubeconfig", "via"] {
        assert!(
            page.contains(&format!("\\fB\\-\\-{flag}\\fR")),
            "no --{flag}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kcap.1");
    std::fs::write(&file, &page).unwrap();
    // man-db is installed by scripts/install-deps.
    let out = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("run man (scripts/install-deps installs man-db)");
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["NAME", "SYNOPSIS", "--duration", "--ssh-host"] {
        assert!(text.contains(word), "rendered page lacks {word}:\n{text}");
    }
}

/// Only the first word selects the generators: a pod or a file called `man` is
/// still a pod or a file.
#[test]
fn man_and_completions_are_words_only_first() {
    let dir = tempfile::tempdir().unwrap();
    // An empty pcap file named "man": -r reads it (no packets, exit 0).
    let mut header = Vec::new();
    for field in [0xa1b2_c3d4u32.to_le_bytes(), [2, 0, 4, 0], [0; 4], [0; 4]] {
        header.extend_from_slice(&field);
    }
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(dir.path().join("man"), &header).unwrap();
    let out = Command::new(KCAP)
        .args(["-r", "man"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // pod/man is a target: with no usable kubeconfig it fails as a capture would.
    let out = Command::new(KCAP)
        .args(["pod/man", "--dry-run"])
        .env("KUBECONFIG", dir.path().join("none"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 15, &[]);
}
