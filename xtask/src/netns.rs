//! `cargo xtask netns`: members in network namespaces the test creates (three hosts, a link
//! cut, an isolated host that must heal), and mDNS discovery between two namespaces. Needs root and iproute2 (CI runs as root): where
//! the machine does not allow `ip netns`, it fails and says why, rather than pass untested.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{self, cargo, step};

/// Whether this machine lets us create network namespaces.
pub(crate) fn available() -> bool {
    let name = format!("pgprobe{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
    }
    ok
}

pub(crate) fn run() -> Result<()> {
    step("network namespaces (three hosts, a cut, an isolation that heals)");
    if !available() {
        bail!(
            "`ip netns add` is not allowed here: the network-namespace test needs root and \
             iproute2 (run `cargo xtask ci` as root, or `cargo xtask ci --quick` without it)"
        );
    }
    util::run(cargo().args([
        "test",
        "-p",
        "peergroup-membership",
        "--test",
        "net",
        "--",
        "--ignored",
        "--exact",
        "netns::three_hosts_survive_a_cut_and_heal_an_isolation",
        "--nocapture",
    ]))?;
    step("mDNS discovery across two network namespaces");
    util::run(cargo().args([
        "test",
        "-p",
        "peergroup-transport",
        "--test",
        "transport",
        "--",
        "--ignored",
        "--exact",
        "mdns::mdns_discovery_across_namespaces",
        "--nocapture",
    ]))
}

/// `cargo xtask nat`: the NAT matrix. Members behind NAT boxes of six kinds (network
/// namespaces with iptables; two kinds run miniupnpd, speaking UPnP-IGD or PCP), one public
/// member, every pair of kinds, two pairs without QUIC, and two joins from behind a NAT:
/// prints tables of links (direct or relayed), times and port mappings, says which goals are
/// met, fails when a pair is not connected or one that can link directly did not.
pub(crate) fn nat() -> Result<()> {
    step("NAT matrix (members behind six kinds of NAT, punching through a public member)");
    if !available() {
        bail!(
            "`ip netns add` is not allowed here: the NAT matrix needs root, iproute2 and \
             iptables (run `cargo xtask nat` as root)"
        );
    }
    util::ensure_tools(
        &[
            ("iptables", "iptables"),
            ("miniupnpd", "miniupnpd-iptables"),
        ],
        &[],
    )?;
    // --workspace: the features the tests step built with, so nothing is built again.
    util::run(cargo().args([
        "test",
        "--workspace",
        "--test",
        "net",
        "--",
        "--ignored",
        "--exact",
        "nat::nat_matrix",
        "--nocapture",
    ]))
}
