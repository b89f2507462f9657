//! `kcap-testbed status`: a human-readable summary of a bed from its state.json.

use std::fmt::Write as _;

use anyhow::Result;

use crate::netns;
use crate::state::State;

pub(crate) fn report(state: &State) -> Result<String> {
    let mut out = String::new();
    let up = |ns: &str| {
        if netns::exists(ns) {
            "present"
        } else {
            "MISSING"
        }
    };
    writeln!(
        out,
        "test bed in {} (started by pid {})",
        state.dir.display(),
        state.owner_pid
    )?;
    writeln!(
        out,
        "ssh config:  {}",
        state.dir.join("ssh_config").display()
    )?;
    writeln!(out, "client netns: {}", state.client_netns)?;
    for n in &state.networks {
        writeln!(
            out,
            "network {:8} {}/{:<3} switch netns {} ({})",
            n.name,
            n.subnet,
            n.prefix_len,
            n.netns,
            up(&n.netns)
        )?;
    }
    for h in &state.hosts {
        let addrs: Vec<String> = h
            .addresses
            .iter()
            .map(|(n, a)| format!("{n}={a}"))
            .collect();
        let sshd = match state
            .pids
            .iter()
            .find(|(host, kind, _)| host == &h.name && kind == "sshd")
        {
            Some((_, _, pid))
                if netns::is_running(*pid) && netns::comm(*pid).as_deref() == Some("sshd") =>
            {
                format!("sshd alive (pid {pid})")
            }
            Some((_, _, pid)) => format!("sshd DEAD (pid {pid})"),
            None => "no sshd".to_string(),
        };
        writeln!(
            out,
            "host {:11} {:30} netns {} ({}), {sshd}",
            h.name,
            addrs.join(" "),
            h.netns,
            up(&h.netns)
        )?;
    }
    Ok(out)
}
