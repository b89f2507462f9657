//! kcap as a Wireshark extcap: `kcap extcap install` links kcap into Wireshark's
//! extcap folder ([`install`]); Wireshark then runs it with `--extcap-*` flags
//! ([`request`]) to list its interfaces and their [`options`] ([`dialog`], filled
//! from the API by [`reload`]), and with `--capture --fifo PATH` to capture: that is a
//! normal kcap capture ([`capture`] turns the options into kcap's flags) whose
//! stream goes into the FIFO. Errors go to stderr as one readable paragraph, which
//! Wireshark shows in its dialog, with a nonzero exit.

mod capture;
mod dialog;
mod install;
mod options;
mod reload;
mod request;

use std::io::Write;

use crate::config::Config;
use crate::exit::Exit;
use crate::wireshark::Viewer;
use dialog::Interface;
use request::Step;

/// The first word of `kcap extcap install|uninstall`.
pub const EXTCAP: &str = "extcap";

pub use install::command;
pub use request::is_extcap;

/// Handles `kcap extcap ...` (only as the first word, as `kcap completions`).
pub fn dispatch(args: &[String]) -> Option<Exit> {
    (args.get(1).map(String::as_str) == Some(EXTCAP)).then(|| install::main(&args[1..]))
}

/// What an extcap call amounts to.
pub enum Answer {
    /// Answered (or failed) already.
    Done(Exit),
    /// Capture with this configuration, as kcap always does.
    Capture(Box<Config>),
}

/// Answers Wireshark's call (`args` is argv, with `--extcap-*` flags).
pub fn answer(args: &[String]) -> Answer {
    match step(args) {
        Ok(answer) => answer,
        Err(message) => {
            eprintln!("kcap: {message}");
            Answer::Done(Exit::Usage)
        }
    }
}

fn step(args: &[String]) -> Result<Answer, String> {
    let request = request::parse(args, &options::flag_names())?;
    let contexts = kube_contexts();
    if request.step == Step::Interfaces {
        let mut list = vec![Interface::Ssh];
        list.extend(
            contexts
                .iter()
                .map(|c| Interface::Kube { context: c.clone() }),
        );
        return Ok(print(&dialog::interfaces(&list)));
    }
    let name = request.interface.as_deref().unwrap_or_default();
    let interface = Interface::find(name, &contexts).ok_or_else(|| {
        format!(
            "no kcap interface {name:?}: kcap-ssh, or kcap-k8s-CONTEXT for a context of \
             your kubeconfig ({})",
            if contexts.is_empty() {
                "none found".to_string()
            } else {
                contexts.join(", ")
            }
        )
    })?;
    match request.step {
        Step::Interfaces => unreachable!("answered above"),
        Step::Dlts => Ok(print(&dialog::dlts())),
        Step::Config { reload: None } => Ok(print(&dialog::config(&interface))),
        Step::Config { reload: Some(call) } => reload(&interface, &call, &request.options),
        // kcap compiles no BPF itself: the capture tool on the node judges the
        // filter, and a bad one fails the capture with the tool's message.
        Step::ValidateFilter => Ok(Answer::Done(Exit::Success)),
        Step::Capture { fifo } => {
            let argv = capture::kcap_args(
                &interface,
                &request.options,
                request.capture_filter.as_deref(),
            )?;
            let cli = crate::cli::try_parse_with_defaults(&argv).map_err(|text| {
                // clap's first line says it; its usage lines name flags the dialog hides.
                text.lines().next().unwrap_or_default().to_string()
            })?;
            let mut config = Config::from_cli(cli).map_err(|e| e.to_string())?;
            config.wireshark = Some(Viewer::Fifo(fifo));
            Ok(Answer::Capture(Box::new(config)))
        }
    }
}

/// The reload button of a Kubernetes option: the values from the API.
fn reload(
    interface: &Interface,
    call: &str,
    options: &[(String, String)],
) -> Result<Answer, String> {
    let Interface::Kube { context } = interface else {
        return Ok(Answer::Done(Exit::Success));
    };
    let namespace = options
        .iter()
        .find(|(name, _)| name == "namespace")
        .map(|(_, v)| v.as_str());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    let values = runtime
        .block_on(reload::values(context, call, namespace))
        .map_err(|e| crate::exit::chain(&e))?;
    Ok(print(
        &dialog::values(interface, call, &values).unwrap_or_default(),
    ))
}

/// The kubeconfig's contexts ($KUBECONFIG, else ~/.kube/config); none when there
/// is no readable kubeconfig (the SSH interface still works).
fn kube_contexts() -> Vec<String> {
    kube::config::Kubeconfig::read()
        .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

fn print(text: &str) -> Answer {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Answer::Done(Exit::Success),
        Err(_) => Answer::Done(Exit::OutputFailed),
    }
}
