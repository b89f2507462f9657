//! `kcap extcap install|uninstall [--dir DIR]`: a symlink named `kcap` to this
//! binary in Wireshark's personal extcap folder. The folder moved between
//! Wireshark versions, so it is asked of the installed one: `tshark -G folders`
//! names a "Personal Extcap path" in newer versions; 4.0 lists only the global
//! one and runs personal extcaps from its personal configuration folder's
//! `extcap` (measured; not `~/.local/lib/wireshark/extcap`).

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Arg, Command as ClapCommand};

use crate::exit::Exit;

/// The link's name in the folder (Wireshark runs every executable there).
const LINK_NAME: &str = "kcap";

pub fn command() -> ClapCommand {
    let dir = Arg::new("dir")
        .long("dir")
        .value_name("DIR")
        .value_parser(clap::value_parser!(PathBuf))
        .help("Extcap folder to use (default: the installed Wireshark's personal one)");
    ClapCommand::new(super::EXTCAP)
        .about("Link kcap into Wireshark's extcap folder, or remove the link")
        .long_about(
            "Link kcap into Wireshark's personal extcap folder: Wireshark and tshark -D \
             then list kcap-ssh and one kcap-k8s-CONTEXT interface per kubeconfig context.\n  \
             kcap extcap install      kcap extcap uninstall",
        )
        .subcommand_required(true)
        .subcommand(
            ClapCommand::new("install")
                .about("Symlink kcap into the folder")
                .arg(dir.clone()),
        )
        .subcommand(
            ClapCommand::new("uninstall")
                .about("Remove the symlink")
                .arg(dir),
        )
}

/// Runs `kcap extcap ...` (`args` starts at `extcap`).
pub fn main(args: &[String]) -> Exit {
    let matches = match command().bin_name("kcap extcap").try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
        }
    };
    let (action, sub) = matches.subcommand().expect("a subcommand is required");
    let place = match sub.get_one::<PathBuf>("dir") {
        Some(dir) => Place {
            dir: dir.clone(),
            why: "given with --dir".into(),
        },
        None => find_folder(),
    };
    let link = place.dir.join(LINK_NAME);
    let result = match action {
        "install" => install(&link).map(|exe| {
            println!(
                "kcap: linked {} -> {} ({}).\n\
                 Restart Wireshark; `tshark -D` lists kcap-ssh and kcap-k8s-CONTEXT.",
                link.display(),
                exe.display(),
                place.why
            )
        }),
        _ => uninstall(&link).map(|removed| {
            if removed {
                println!("kcap: removed {}", link.display());
            } else {
                println!("kcap: {} was not there: nothing to remove", link.display());
            }
        }),
    };
    match result {
        Ok(()) => Exit::Success,
        Err(message) => {
            eprintln!("kcap: error: {message}");
            Exit::OutputFailed
        }
    }
}

/// The folder and why it is that one (shown to the user).
struct Place {
    dir: PathBuf,
    why: String,
}

/// Links `link` to this binary; returns the binary's path.
fn install(link: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find kcap's own path: {e}"))?;
    let dir = link.parent().expect("a link in a folder");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)
            .map_err(|e| format!("cannot replace {}: {e}", link.display()))?,
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a link kcap made: remove it first",
                link.display()
            ));
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&exe, link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    Ok(exe)
}

/// Whether there was a link to remove. Only a symlink is removed: a file of that
/// name is not kcap's.
fn uninstall(link: &Path) -> Result<bool, String> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)
            .map(|()| true)
            .map_err(|e| format!("cannot remove {}: {e}", link.display())),
        Ok(_) => Err(format!(
            "{} is not a link kcap made: leaving it",
            link.display()
        )),
        Err(_) => Ok(false),
    }
}

/// Asks tshark; without tshark, the 4.0 rule from the environment.
fn find_folder() -> Place {
    let version = tshark(&["--version"])
        .and_then(|out| parse_version(&out))
        .unwrap_or_else(|| "an unknown version".into());
    let folders = tshark(&["-G", "folders"]).unwrap_or_default();
    if let Some(dir) = folder(&folders, "Personal Extcap path") {
        return Place {
            dir,
            why: format!("Wireshark {version}'s personal extcap folder"),
        };
    }
    let config = folder(&folders, "Personal configuration").unwrap_or_else(default_config_dir);
    Place {
        dir: config.join("extcap"),
        why: format!(
            "Wireshark {version} names no personal extcap folder: it runs the ones in \
             its personal configuration folder's extcap"
        ),
    }
}

/// tshark's answer: the one on PATH, else the macOS application's.
fn tshark(args: &[&str]) -> Option<String> {
    [
        "tshark",
        "/Applications/Wireshark.app/Contents/MacOS/tshark",
    ]
    .iter()
    .find_map(|program| {
        let out = Command::new(program).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// `TShark (Wireshark) 4.0.17 (Git v4.0.17 ...)` -> `4.0.17`.
fn parse_version(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let rest = line.split_once("(Wireshark) ")?.1;
    Some(rest.split_whitespace().next()?.to_string())
}

/// A `Name:<tab>path` line of `tshark -G folders`.
fn folder(listing: &str, name: &str) -> Option<PathBuf> {
    listing.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| PathBuf::from(value.trim()))
    })
}

/// Wireshark's personal configuration folder when tshark cannot say.
fn default_config_dir() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(config) => PathBuf::from(config).join("wireshark"),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config/wireshark")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_old_and_new_tshark() {
        let old = "Temp:                \t/tmp\n\
                   Personal configuration:\t/root/.config/wireshark\n\
                   Extcap path:         \t/usr/lib/x86_64-linux-gnu/wireshark/extcap\n";
        assert_eq!(folder(old, "Personal Extcap path"), None);
        assert_eq!(
            folder(old, "Personal configuration"),
            Some(PathBuf::from("/root/.config/wireshark"))
        );
        let new = "Personal Extcap path:\t/home/u/.local/lib/wireshark/extcap\n";
        assert_eq!(
            folder(new, "Personal Extcap path"),
            Some(PathBuf::from("/home/u/.local/lib/wireshark/extcap"))
        );
        assert_eq!(
            parse_version(
                "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3).\n"
            ),
            Some("4.0.17".into())
        );
    }

    #[test]
    fn install_replaces_its_link_and_uninstall_leaves_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("extcap").join(LINK_NAME);
        install(&link).unwrap();
        install(&link).unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::env::current_exe().unwrap()
        );
        assert!(uninstall(&link).unwrap());
        assert!(!uninstall(&link).unwrap());
        std::fs::write(&link, "someone else's").unwrap();
        assert!(install(&link).is_err());
        assert!(uninstall(&link).is_err());
        assert!(link.exists());
    }
}
