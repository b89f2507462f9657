//! Measures how fast a remote command's stdout arrives:
//! `throughput USER@HOST:PORT KEY KNOWN_HOSTS COMMAND`.

use std::time::Instant;

use kcap_ssh::{AgentSource, ConnectOptions, Destination, Output, PasswordSource};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dest, key, known_hosts, command] = &args[..] else {
        eprintln!("usage: throughput USER@HOST:PORT KEY KNOWN_HOSTS COMMAND");
        std::process::exit(2);
    };
    let (user, hostport) = dest.split_once('@').expect("USER@HOST:PORT");
    let (host, port) = hostport.rsplit_once(':').expect("HOST:PORT");
    let mut opts = ConnectOptions::new(Destination {
        user: Some(user.into()),
        host: host.into(),
        port: Some(port.parse().expect("port")),
    });
    opts.identity_files = vec![key.into()];
    opts.known_hosts_files = vec![known_hosts.into()];
    opts.accept_new_host_key = true;
    opts.password = PasswordSource::Never;
    opts.agent = AgentSource::None;
    opts.jump_hosts = Some(vec![]);
    let session = kcap_ssh::connect(&opts).await.expect("connect");
    let start = Instant::now();
    let mut p = session.exec(command).await.expect("exec");
    let mut bytes = 0usize;
    while let Some(out) = p.next().await.expect("read") {
        if let Output::Stdout(d) = out {
            bytes += d.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{bytes} bytes in {secs:.3} s: {:.0} MB/s",
        bytes as f64 / 1e6 / secs
    );
    session.disconnect().await;
}
