//! What a user gets besides captures: `--version`.

use std::process::Command;

use crate::util::KCAP;

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
