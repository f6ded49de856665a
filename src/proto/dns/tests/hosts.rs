use std::net::IpAddr;

use crate::proto::dns::Hosts;

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

const KUBE_HOSTS: &str = "# Kubernetes-managed hosts file.\n\
127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
10.244.1.7\tworker-0.train.default.svc.cluster.local\tworker-0\n\
\n\
# Entries added by HostAliases.\n\
10.0.0.5\tstorage.internal. Storage\n";

#[test]
fn kubernetes_sample() {
    let h = Hosts::parse(KUBE_HOSTS);
    assert_eq!(h.lookup("localhost"), ips(&["127.0.0.1", "::1"]));
    assert_eq!(h.lookup("ip6-loopback"), ips(&["::1"]));
    assert_eq!(h.lookup("worker-0"), ips(&["10.244.1.7"]));
    assert_eq!(
        h.lookup("WORKER-0.train.default.svc.cluster.local."),
        ips(&["10.244.1.7"])
    );
    assert_eq!(h.lookup("storage.internal"), ips(&["10.0.0.5"]));
    assert_eq!(h.lookup("storage.internal."), ips(&["10.0.0.5"]));
    assert_eq!(h.lookup("storage"), ips(&["10.0.0.5"]));
    assert!(h.lookup("worker-1").is_empty());
    assert!(h.lookup("").is_empty());
    assert!(h.lookup(".").is_empty());
}

#[test]
fn comments_bad_lines_repeats_and_scopes() {
    let text = "1.2.3.4 a # 5.6.7.8 b\n\
                #9.9.9.9 c\n\
                not-an-ip d\n\
                1.2.3 e\n\
                2.2.2.2\n\
                1.2.3.4 A\n\
                3.3.3.3 a\n\
                fe80::1%eth0 linklocal\n";
    let h = Hosts::parse(text);
    assert_eq!(h.lookup("a"), ips(&["1.2.3.4", "3.3.3.3"]));
    for missing in ["b", "c", "d", "e", "#"] {
        assert!(h.lookup(missing).is_empty(), "{missing}");
    }
    assert_eq!(h.lookup("linklocal"), ips(&["fe80::1"]));
    assert_eq!(Hosts::parse(""), Hosts::default());
}
