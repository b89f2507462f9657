//! Integration tests: drive the real `kcap` binary against a real test bed (network
//! namespaces running OpenSSH sshd, tcpdump and traffic) and check what was captured
//! with tshark and with kcap's own reader. Needs root, iproute2, openssh-server,
//! tcpdump and tshark (see .ci/run).

mod util;

mod agent;
mod all_nodes;
mod auth;
mod callback;
mod certificates;
mod defaults;
mod direction;
mod dry_run;
mod errors;
mod extcap;
mod faults;
mod filters;
mod host_keys;
mod hostile;
mod interfaces;
mod kube;
mod kube_errors;
mod kube_lifecycle;
mod lifecycle;
mod lines;
mod list_interfaces;
mod lying_api;
mod malicious;
mod netns;
mod nodes;
mod output;
mod plugin;
mod process;
mod proxy;
mod reboot;
mod records;
mod rotation;
mod secrets;
mod serve;
mod ship;
mod soak;
mod status;
mod wireshark;
