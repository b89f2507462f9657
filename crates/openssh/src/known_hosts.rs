//! known_hosts verification with OpenSSH's semantics: plain and `[host]:port` names,
//! hashed `|1|salt|hash` entries, wildcards and negation, `@revoked` and
//! `@cert-authority` markers. Works on the OpenSSH public key line form
//! (`ssh-ed25519 AAAA...`), so it needs no SSH library.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::pattern::match_list;

/// Decodes with or without trailing '=' padding: files edited by hand or by other
/// tools are not always padded, and OpenSSH's decoder does not insist either.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A server key as it appears on the wire, in OpenSSH's text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// e.g. `ssh-ed25519`
    pub algorithm: String,
    /// the base64 of the key blob
    pub base64: String,
}

impl HostKey {
    /// `SHA256:...` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let blob = LENIENT.decode(self.base64.as_bytes()).unwrap_or_default();
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(&blob)))
    }

    /// Parses `ssh-ed25519 AAAA... [comment]` (a `.pub` file or `ssh-keyscan` output
    /// without the host). The blob must decode and name the same algorithm.
    pub fn from_openssh_line(line: &str) -> Result<HostKey, Error> {
        let mut fields = line.split_whitespace();
        let (Some(algorithm), Some(b64)) = (fields.next(), fields.next()) else {
            return Err(key_error("expected 'algorithm base64 [comment]'"));
        };
        let blob = LENIENT
            .decode(b64.as_bytes())
            .map_err(|e| key_error(&format!("bad base64: {e}")))?;
        let key = HostKey::from_blob(&blob)?;
        if key.algorithm != algorithm {
            return Err(key_error(&format!(
                "line says {algorithm} but the key is {}",
                key.algorithm
            )));
        }
        Ok(key)
    }

    /// Builds a key from its SSH wire blob, whose first field names the algorithm.
    pub fn from_blob(blob: &[u8]) -> Result<HostKey, Error> {
        let len_bytes: [u8; 4] = blob
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| key_error("key blob too short"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let name = blob
            .get(4..4 + len)
            .and_then(|n| std::str::from_utf8(n).ok())
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| key_error("key blob does not start with an algorithm name"))?;
        Ok(HostKey {
            algorithm: name.to_string(),
            base64: STANDARD.encode(blob),
        })
    }

    fn blob(&self) -> Option<Vec<u8>> {
        LENIENT.decode(self.base64.as_bytes()).ok()
    }
}

/// Whether a host certificate principal names `host`: OpenSSH accepts `*`/`?`
/// patterns there; case does not matter, as for host names everywhere.
pub fn principal_matches(principal: &str, host: &str) -> bool {
    crate::pattern::glob_match(&host.to_ascii_lowercase(), &principal.to_ascii_lowercase())
}

fn key_error(message: &str) -> Error {
    Error::Key {
        message: message.to_string(),
    }
}

/// Result of looking a key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching entry names this key.
    Trusted,
    /// No entry for this host (with this key type or any other).
    Unknown,
    /// Entries exist for the host but none has this key: possible man-in-the-middle.
    /// `file`/`line` point at the first conflicting entry.
    Changed { file: PathBuf, line: usize },
    /// The key is marked `@revoked`.
    Revoked { file: PathBuf, line: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated patterns, possibly `!negated`.
    Patterns(Vec<String>),
    /// `|1|salt|hmac`: HMAC-SHA1 keyed with the salt over the host name.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    algorithm: String,
    blob: Vec<u8>,
    file: PathBuf,
    line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Loads the given files in order; missing files are skipped.
    pub fn load(paths: &[PathBuf]) -> Result<KnownHosts, Error> {
        let mut known = KnownHosts::default();
        for path in paths {
            let text = match fs::read(path) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(Error::Read {
                        path: path.clone(),
                        source,
                    });
                }
            };
            known.add_text(&text, path);
        }
        Ok(known)
    }

    /// Parses known_hosts `text` as if read from `path` (used in messages only).
    /// Adds ssh_config's `RevokedHostKeys` file: public keys (`TYPE BASE64
    /// [comment]`, one per line) that no host may present, whatever its name,
    /// as host keys or as certificate authorities. As in OpenSSH, a file that
    /// cannot be read refuses every host rather than trusting one; an OpenSSH
    /// KRL (binary) is refused with what to do instead.
    pub fn add_revoked_keys(&mut self, path: &Path) -> Result<(), Error> {
        let bytes = fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if bytes.starts_with(b"SSHKRL\n\0") {
            return Err(Error::Syntax {
                path: path.to_path_buf(),
                line: 1,
                message: "a key revocation list (KRL), which kcap cannot read: list the \
                          revoked keys in it as public keys, one per line"
                    .into(),
            });
        }
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if let Some(entry) = parse_line(&format!("@revoked * {line}"), path, i + 1) {
                self.entries.push(entry);
            }
        }
        Ok(())
    }

    pub fn parse_str(text: &str, path: &Path) -> KnownHosts {
        let mut known = KnownHosts::default();
        known.add_text(text, path);
        known
    }

    fn add_text(&mut self, text: &str, path: &Path) {
        for (i, line) in text.lines().enumerate() {
            // Malformed lines are skipped, as OpenSSH does, so one bad line cannot
            // lock the user out of every host.
            if let Some(entry) = parse_line(line, path, i + 1) {
                self.entries.push(entry);
            }
        }
    }

    /// Checks `key` for `host` reached on `port` (22 -> `host`, else `[host]:port`).
    pub fn check(&self, host: &str, port: u16, key: &HostKey) -> Verdict {
        let name = lookup_name(host, port);
        let Some(blob) = key.blob() else {
            return Verdict::Unknown;
        };
        let same = |e: &Entry| e.algorithm == key.algorithm && e.blob == blob;
        let mut trusted = false;
        let mut changed = None;
        let matching = self
            .entries
            .iter()
            .filter(|e| host_matches(&e.hosts, &name));
        for e in matching {
            match e.marker {
                Marker::Revoked if same(e) => {
                    return Verdict::Revoked {
                        file: e.file.clone(),
                        line: e.line,
                    };
                }
                Marker::None if same(e) => trusted = true,
                Marker::None if changed.is_none() => changed = Some(e),
                _ => {}
            }
        }
        match (trusted, changed) {
            (true, _) => Verdict::Trusted,
            (false, Some(e)) => Verdict::Changed {
                file: e.file.clone(),
                line: e.line,
            },
            (false, None) => Verdict::Unknown,
        }
    }

    /// Whether some `@cert-authority` line names `host` on `port`: then a host
    /// certificate is worth asking the server for.
    pub fn has_cert_authority(&self, host: &str, port: u16) -> bool {
        let name = lookup_name(host, port);
        self.entries
            .iter()
            .any(|e| e.marker == Marker::CertAuthority && host_matches(&e.hosts, &name))
    }

    /// Checks the authority `ca` that signed a host certificate for `host` on
    /// `port`: [`Verdict::Trusted`] if an `@cert-authority` line for this host names
    /// it, [`Verdict::Revoked`] if an `@revoked` line for this host names it,
    /// else [`Verdict::Unknown`]. `Changed` is never returned.
    pub fn check_authority(&self, host: &str, port: u16, ca: &HostKey) -> Verdict {
        let name = lookup_name(host, port);
        let Some(blob) = ca.blob() else {
            return Verdict::Unknown;
        };
        if let Some(v) = self.revoked(&blob, &name) {
            return v;
        }
        let trusted = self.entries.iter().any(|e| {
            e.marker == Marker::CertAuthority && e.blob == blob && host_matches(&e.hosts, &name)
        });
        if trusted {
            Verdict::Trusted
        } else {
            Verdict::Unknown
        }
    }

    /// [`Verdict::Revoked`] if an `@revoked` line for `host` on `port` names `key`
    /// (e.g. the key inside a host certificate).
    pub fn check_revoked(&self, host: &str, port: u16, key: &HostKey) -> Option<Verdict> {
        self.revoked(&key.blob()?, &lookup_name(host, port))
    }

    fn revoked(&self, blob: &[u8], name: &str) -> Option<Verdict> {
        self.entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.blob == blob && host_matches(&e.hosts, name))
            .map(|e| Verdict::Revoked {
                file: e.file.clone(),
                line: e.line,
            })
    }

    /// Appends a hashed entry for `host`/`port` to `path` (creating it and its parent
    /// directory with private permissions), as `ssh -o StrictHostKeyChecking=accept-new` does.
    pub fn append(path: &Path, host: &str, port: u16, key: &HostKey) -> Result<(), Error> {
        let write_err = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(write_err)?;
        }
        let mut salt = [0u8; 20];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut salt))
            .map_err(Error::Random)?;
        let name = lookup_name(host, port);
        let line = format!(
            "{} {} {}\n",
            hashed_name(&salt, &name),
            key.algorithm,
            key.base64
        );
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        let len = file.metadata().map_err(write_err)?.len();
        let mut text = String::new();
        if len > 0 && !ends_with_newline(path)? {
            text.push('\n');
        }
        text.push_str(&line);
        file.write_all(text.as_bytes()).map_err(write_err)
    }
}

fn ends_with_newline(path: &Path) -> Result<bool, Error> {
    use std::io::{Seek, SeekFrom};
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = fs::File::open(path).map_err(read_err)?;
    f.seek(SeekFrom::End(-1)).map_err(read_err)?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last).map_err(read_err)?;
    Ok(last[0] == b'\n')
}

/// The name OpenSSH stores and looks up: lowercased, bracketed with the port
/// unless it is 22.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn hmac_sha1(salt: &[u8], name: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("hmac key");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hashed_name(salt: &[u8], name: &str) -> String {
    format!(
        "|1|{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(hmac_sha1(salt, name))
    )
}

fn host_matches(hosts: &Hosts, name: &str) -> bool {
    match hosts {
        Hosts::Patterns(patterns) => {
            match_list(name, patterns.iter().map(String::as_str)) == Some(true)
        }
        Hosts::Hashed { salt, hash } => hmac_sha1(salt, name) == *hash,
    }
}

fn parse_line(line: &str, file: &Path, number: usize) -> Option<Entry> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let hosts = parse_hosts(first)?;
    let algorithm = fields.next()?.to_string();
    let blob = LENIENT.decode(fields.next()?.as_bytes()).ok()?;
    Some(Entry {
        marker,
        hosts,
        algorithm,
        blob,
        file: file.to_path_buf(),
        line: number,
    })
}

fn parse_hosts(field: &str) -> Option<Hosts> {
    let Some(rest) = field.strip_prefix("|1|") else {
        // Patterns are compared against a lowercased name, so lowercase them too
        // (OpenSSH's match_hostname does the same).
        let patterns = field
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        return Some(Hosts::Patterns(patterns));
    };
    let (salt, hash) = rest.split_once('|')?;
    let salt = LENIENT.decode(salt).ok()?;
    let hash = LENIENT.decode(hash).ok()?;
    (hash.len() == 20).then_some(Hosts::Hashed { salt, hash })
}

#[cfg(test)]
mod tests;
