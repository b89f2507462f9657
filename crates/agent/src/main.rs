//! The capture agent kcap sends to a node with each capture (see lib.rs). kcap
//! looks for it next to its own executable.

fn main() {
    std::process::exit(kcap_agent::main());
}
