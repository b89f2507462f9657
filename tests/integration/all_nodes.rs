//! `node/all` and `--node-selector`: every node of the cluster at once, through
//! helper pods, merged into one file with one interface per node.

use std::time::Duration;

use crate::kube::LIMIT;
use crate::util::*;

#[test]
fn every_node_at_once_and_by_selector() {
    kcap_testbed::require_kubectl!();
    let bed = Bed::with(kcap_testbed::Spec::cluster(3));
    let file = bed.path("all.pcapng");
    let out = run(
        bed.kcap_kube()
            .args(["node/all", "--via", "node", "-d", "3s", "-o"])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    let capture = read_capture(&file);
    let mut names = capture.interface_names();
    names.sort();
    assert_eq!(
        names,
        ["node/node-a/any", "node/node-b/any", "node/node-c/any"],
        "{}",
        stderr(&out)
    );
    for node in ["node/node-a/any", "node/node-b/any", "node/node-c/any"] {
        assert!(capture.count_on(node) > 0, "nothing from {node}");
    }
    assert!(capture.timestamps_non_decreasing());
    assert!(
        stderr(&out).contains("0 dropped by kernel"),
        "{}",
        stderr(&out)
    );
    assert!(bed.helpers_left(Duration::from_secs(10)).is_empty());

    // --node-selector alone means node/all, narrowed by labels.
    let file = bed.path("b.pcapng");
    let out = run(
        bed.kcap_kube()
            .args([
                "--node-selector",
                "kubernetes.io/hostname=node-b",
                "--via",
                "node",
            ])
            .args(["-c", "5", "-o"])
            .arg(&file),
        LIMIT,
    );
    assert_ok(&out);
    assert_eq!(read_capture(&file).interface_names(), ["node/node-b/any"]);

    let out = run(
        bed.kcap_kube()
            .args(["node/all", "--node-selector", "pool=none", "-c", "1", "-o"])
            .arg(bed.path("none.pcapng")),
        LIMIT,
    );
    assert_exit(&out, 13, &["--node-selector pool=none", "node-a"]);
    assert!(bed.helpers_left(Duration::from_secs(10)).is_empty());
}
