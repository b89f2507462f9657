//! `--serve ADDR` and `--connect URL`: the flags checked into settings, the
//! server started before anything connects, and its figures for the summary.
//! Serving itself is [`kcap_serve`]'s; the stream is [`crate::sink::serve`]'s;
//! reading a served capture is [`crate::read`]'s, like a file.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use kcap_serve::{ConnectOptions, ServeOptions, ServeReport, Server};

use crate::cli::Cli;
use crate::config::{UsageError, usage};

/// A viewer may fall behind by this much before it is cut off.
const DEFAULT_BUFFER: u64 = 8 << 20;
/// Below this a viewer would be cut off by an ordinary burst (the stream goes
/// out in pieces of up to 64 KiB).
const MIN_BUFFER: u64 = 1 << 20;
/// How long viewers get, after the capture, to take what they have queued.
pub const DRAIN: Duration = Duration::from_secs(5);
/// For `--connect`: reaching the server and its first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `--serve` and its companions, checked.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    options: ServeOptions,
    /// kcap made the token up: it is printed once, at the start.
    generated_token: bool,
}

impl ServeSettings {
    pub fn from_cli(cli: &Cli) -> Result<Option<ServeSettings>, UsageError> {
        let Some(addr) = &cli.serve else {
            if cli.serve_cert.is_some() || cli.serve_buffer.is_some() {
                return Err(usage(
                    "--serve-cert, --serve-key and --serve-buffer go with --serve",
                ));
            }
            if cli.serve_token.is_some() && cli.connect.is_none() {
                return Err(usage("--serve-token goes with --serve (or --connect)"));
            }
            return Ok(None);
        };
        if cli.read.is_some() || cli.connect.is_some() {
            return Err(usage(
                "--serve shares a live capture: not with -r or --connect (serve the file \
                 with any web server, or capture again)",
            ));
        }
        let addr = parse_address(addr)?;
        let given = cli.serve_token.as_deref().map(check_token).transpose()?;
        let generated_token = given.is_none() && !addr.ip().is_loopback();
        let token = match (given, generated_token) {
            (Some(token), _) => Some(token.to_owned()),
            (None, true) => Some(generate_token().map_err(|e| {
                usage(format!(
                    "--serve {addr}: cannot generate a token ({e}): give --serve-token"
                ))
            })?),
            (None, false) => None,
        };
        let buffer = match &cli.serve_buffer {
            None => DEFAULT_BUFFER,
            Some(size) => crate::limits::parse_size("--serve-buffer", size)?,
        };
        if buffer < MIN_BUFFER {
            return Err(usage("--serve-buffer must be at least 1M"));
        }
        Ok(Some(ServeSettings {
            options: ServeOptions {
                addr,
                token,
                tls: cli.serve_cert.clone().zip(cli.serve_key.clone()),
                buffer: buffer as usize,
            },
            generated_token,
        }))
    }
}

/// `127.0.0.1:9090`, `[::1]:9090`, `localhost:9090`; `:9090` for every address;
/// `9090` alone for loopback.
fn parse_address(given: &str) -> Result<SocketAddr, UsageError> {
    let bad = || {
        usage(format!(
            "--serve {given:?}: give ADDRESS:PORT (127.0.0.1:9090, [::1]:9090, :9090 for \
             every address)"
        ))
    };
    if let Ok(port) = given.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = given.strip_prefix(':') {
        let port = port.parse::<u16>().map_err(|_| bad())?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = given.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = given.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| usage(format!("--serve {given:?}: {host} does not resolve")))
}

/// A token travels in a header and a URL: keep it to characters both take as is.
fn check_token(token: &str) -> Result<&str, UsageError> {
    let url_safe = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if token.len() < 8 || !token.chars().all(url_safe) {
        return Err(usage(
            "--serve-token: at least 8 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'",
        ));
    }
    Ok(token)
}

fn generate_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Binds the server (a taken port fails here, before anything connects) and
/// says where viewers find the capture.
pub fn start(settings: &ServeSettings, quiet: bool) -> Result<Server, kcap_serve::BindError> {
    let server = Server::bind(settings.options.clone())?;
    let (http, ws) = server.urls();
    if !quiet {
        eprintln!("kcap: serving the live capture at {http} and {ws}");
    }
    if settings.generated_token
        && let Some(token) = &settings.options.token
    {
        // Printed once, even with -q: without it no viewer gets in.
        eprintln!(
            "kcap: viewers need this token (off loopback): {token}\n  \
             curl -sN -H 'Authorization: Bearer {token}' {http} | wireshark -k -i -"
        );
    }
    Ok(server)
}

/// The summary's line about the viewers.
pub fn summary_line(report: &ServeReport) -> String {
    let status = &report.status;
    let mut line = format!(
        "served {} viewer{}",
        status.viewers_served,
        if status.viewers_served == 1 { "" } else { "s" }
    );
    if status.viewers_cut_off > 0 {
        line.push_str(&format!(
            ", {} cut off for falling behind (--serve-buffer)",
            status.viewers_cut_off
        ));
    }
    if report.not_drained > 0 {
        line.push_str(&format!(
            ", {} still reading after {}s were cut",
            report.not_drained,
            DRAIN.as_secs()
        ));
    }
    line
}

/// `--connect URL`, checked.
pub fn connect_options(cli: &Cli) -> Result<Option<ConnectOptions>, UsageError> {
    let Some(url) = &cli.connect else {
        if cli.connect_ca.is_some() {
            return Err(usage("--connect-ca goes with --connect"));
        }
        return Ok(None);
    };
    if cli.read.is_some() {
        return Err(usage(
            "-r reads a file, --connect a served capture: give one",
        ));
    }
    let token = cli.serve_token.as_deref().map(check_token).transpose()?;
    Ok(Some(ConnectOptions {
        url: url.clone(),
        token: token.map(str::to_owned),
        ca: cli.connect_ca.clone(),
        timeout: CONNECT_TIMEOUT,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_users_write_them() {
        assert_eq!(
            parse_address("9090").unwrap(),
            "127.0.0.1:9090".parse().unwrap()
        );
        assert_eq!(
            parse_address(":9090").unwrap(),
            "0.0.0.0:9090".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:9090").unwrap(),
            "[::1]:9090".parse().unwrap()
        );
        assert!(parse_address("localhost:9090").unwrap().ip().is_loopback());
        assert!(parse_address("nowhere").is_err());
        assert!(parse_address("127.0.0.1:99999").is_err());
    }

    #[test]
    fn tokens_are_url_safe_and_generated_ones_are_long() {
        assert!(check_token("abc-DEF_123.x~").is_ok());
        assert!(check_token("short").is_err());
        assert!(check_token("with space in it").is_err());
        assert!(check_token("a&b=cdefgh").is_err());
        let token = generate_token().unwrap();
        assert_eq!(token.len(), 32);
        assert_ne!(token, generate_token().unwrap());
    }
}
