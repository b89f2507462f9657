//! Defaults a team shares: the config file and `KCAP_*` variables reach a real
//! capture, flags beat both, `--print-config` says where each value came from,
//! and a broken file is a usage error naming it.

use std::time::Duration;

use crate::util::{Bed, KCAP, assert_ok, read_capture, run, stderr};

/// kcap in the bed's client, with HOME in the scratch directory and no SSH flags.
fn kcap(bed: &Bed) -> std::process::Command {
    let mut cmd = bed.bed.client_command(KCAP);
    cmd.env("HOME", bed.scratch.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("KCAP_CONFIG")
        .env_remove("SSH_AUTH_SOCK")
        .current_dir(bed.path(""));
    cmd
}

#[test]
fn config_file_and_variables_set_defaults_that_flags_override() {
    let bed = Bed::minimal();
    let dir = bed.scratch.path().join(".config/kcap");
    std::fs::create_dir_all(&dir).unwrap();
    let ssh_config = bed.bed.ssh_config();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "# the team's settings\nssh-config = {:?}\nremote_tool = \"tcpdump\"\nbuffer-size = 4096\n",
            ssh_config.display().to_string()
        ),
    )
    .unwrap();

    // The file alone is enough to reach the node (its ssh_config names it).
    let file = bed.path("cfg.pcapng");
    let out = run(
        kcap(&bed)
            .args(["--ssh-host", "node-a", "-c", "3", "-v", "-o"])
            .arg(&file),
        Duration::from_secs(60),
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).records.len(), 3);
    assert!(stderr(&out).contains("(tcpdump, "), "{}", stderr(&out));

    let shown = run(
        kcap(&bed).env("KCAP_BUFFER_SIZE", "2048").args([
            "--print-config",
            "--remote-tool",
            "auto",
        ]),
        Duration::from_secs(10),
    );
    assert_ok(&shown);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    let config = dir.join("config.toml").display().to_string();
    for line in [
        format!(
            "ssh-config = {:?}  # from {config}",
            ssh_config.display().to_string()
        ),
        "remote-tool = \"auto\"  # from the command line".to_string(),
        "buffer-size = 2048  # from $KCAP_BUFFER_SIZE".to_string(),
        "via = \"auto\"  # kcap's default".to_string(),
    ] {
        assert!(shown.lines().any(|l| l == line), "no {line:?} in:\n{shown}");
    }

    // A value the flag would refuse is refused from the file too; a key that is
    // not a setting names the file and the key.
    std::fs::write(dir.join("config.toml"), "ssh-port = \"ssh\"\n").unwrap();
    let out = run(
        kcap(&bed).args(["--ssh-host", "node-a"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("'ssh'"), "{}", stderr(&out));
    std::fs::write(dir.join("config.toml"), "count = 3\n").unwrap();
    let out = run(
        kcap(&bed).args(["--ssh-host", "node-a"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&config) && text.contains("sets `count`"),
        "{text}"
    );
}
