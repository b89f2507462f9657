//! `kcap completions SHELL` and `kcap man`: shell completion scripts and the man page,
//! generated from the same clap definitions that parse the command line, so they
//! never drift from the flags.
//!
//! Why words, and only as the first argument: kcap's command line is flags plus
//! positional `TYPE/NAME` targets, so clap subcommands next to the targets would
//! make every first target word ambiguous. A bare word is never a target (targets
//! are `TYPE/NAME`; a pod named `man` is `pod/man` or `--pod man`), and only the
//! first argument is looked at, so `kcap --pod man`, `kcap -r man` and
//! `kcap -o completions` keep their meaning. Flags (`--man`) would work too, but
//! would have to be refused next to every capture flag; a first word cannot mix.

use std::io::Write;

use clap::{Arg, Command, CommandFactory, value_parser};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Exit;

pub const COMPLETIONS: &str = "completions";
pub const MAN: &str = "man";

/// Handles `kcap completions SHELL` and `kcap man`; `None` for every other command
/// line (`args` is argv, program name first).
pub fn dispatch(args: &[String]) -> Option<Exit> {
    match args.get(1).map(String::as_str) {
        Some(COMPLETIONS) => Some(completions(&args[1..])),
        Some(MAN) => Some(man(&args[1..])),
        _ => None,
    }
}

/// The command line completions know: kcap's flags and targets plus the words
/// above and `extcap`. (The man page is kcap's flags alone; its EXAMPLES text names the words.)
pub fn completable() -> Command {
    Cli::command()
        .disable_help_subcommand(true)
        .subcommand(completions_command())
        .subcommand(man_command())
        .subcommand(crate::extcap::command())
}

fn completions_command() -> Command {
    Command::new(COMPLETIONS)
        .about("Print a shell completion script (bash, zsh, fish, elvish, powershell)")
        .long_about(
            "Print a shell completion script on stdout, e.g.\n  \
             kcap completions bash > /etc/bash_completion.d/kcap\n  \
             kcap completions zsh > \"${fpath[1]}/_kcap\"\n  \
             kcap completions fish > ~/.config/fish/completions/kcap.fish",
        )
        .arg(
            Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(value_parser!(Shell)),
        )
}

fn man_command() -> Command {
    Command::new(MAN).about("Print kcap's man page (roff) on stdout: kcap man | man -l -")
}

fn completions(args: &[String]) -> Exit {
    let matches = match completions_command()
        .bin_name("kcap completions")
        .try_get_matches_from(args)
    {
        Ok(m) => m,
        Err(e) => return usage(e),
    };
    let shell = *matches.get_one::<Shell>("shell").expect("required");
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut completable(), "kcap", &mut out);
    write(&out)
}

fn man(args: &[String]) -> Exit {
    if let Err(e) = man_command()
        .bin_name("kcap man")
        .try_get_matches_from(args)
    {
        return usage(e);
    }
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        eprintln!("kcap: cannot render the man page: {e}");
        return Exit::Other;
    }
    write(&out)
}

fn usage(e: clap::Error) -> Exit {
    let _ = e.print();
    if e.use_stderr() {
        Exit::Usage
    } else {
        Exit::Success
    }
}

fn write(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("kcap: cannot write: {e}");
            Exit::OutputFailed
        }
    }
}
