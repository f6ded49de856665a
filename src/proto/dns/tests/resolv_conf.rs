use std::net::SocketAddr;
use std::time::Duration;

use crate::proto::dns::ResolvConf;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn kubernetes_pod() {
    let text = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                nameserver 10.96.0.10\n\
                options ndots:5\n";
    let conf = ResolvConf::parse(text);
    assert_eq!(
        conf,
        ResolvConf {
            nameservers: vec![sa("10.96.0.10:53")],
            search: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
                "cluster.local".into()
            ],
            ndots: 5,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
        }
    );
}

#[test]
fn empty_file_gives_defaults() {
    for text in [
        "",
        "\n\n# nothing\n",
        "garbage line\nnameserver not-an-ip\n",
    ] {
        let conf = ResolvConf::parse(text);
        assert_eq!(conf, ResolvConf::default());
        assert_eq!(conf.nameservers, vec![sa("127.0.0.1:53")]);
        assert_eq!((conf.ndots, conf.attempts), (1, 2));
        assert_eq!(conf.timeout, Duration::from_secs(5));
    }
}

#[test]
fn nameservers_v4_v6_scoped_and_limit() {
    let text = "nameserver 192.0.2.1\n\
                nameserver 2001:db8::53 # trailing comment\n\
                nameserver\tfe80::1%eth0\n\
                nameserver 192.0.2.4\n";
    let conf = ResolvConf::parse(text);
    assert_eq!(
        conf.nameservers,
        vec![
            sa("192.0.2.1:53"),
            sa("[2001:db8::53]:53"),
            sa("[fe80::1]:53")
        ]
    );
    // A numeric scope is kept.
    let conf = ResolvConf::parse("nameserver fe80::1%2\n");
    assert_eq!(conf.nameservers, vec![sa("[fe80::1%2]:53")]);
    // Bad addresses do not use up one of the three places.
    let conf = ResolvConf::parse("nameserver 1.2.3\nnameserver x%1\nnameserver 1.1.1.1\n");
    assert_eq!(conf.nameservers, vec![sa("1.1.1.1:53")]);
}

#[test]
fn domain_and_search_last_wins() {
    let conf = ResolvConf::parse("search a.example b.example.\ndomain corp.example\n");
    assert_eq!(conf.search, vec!["corp.example".to_string()]);
    let conf = ResolvConf::parse("domain corp.example\nsearch a.example . b.example\n");
    assert_eq!(
        conf.search,
        vec!["a.example".to_string(), "b.example".to_string()]
    );
    // An empty directive keeps the earlier list.
    let conf = ResolvConf::parse("search a.example\nsearch\ndomain\n");
    assert_eq!(conf.search, vec!["a.example".to_string()]);
}

#[test]
fn search_list_is_bounded() {
    let many: Vec<String> = (0..100).map(|i| format!("d{i}.example")).collect();
    let conf = ResolvConf::parse(&format!("search {}\n", many.join(" ")));
    assert_eq!(conf.search.len(), 32);
    assert_eq!(conf.search[31], "d31.example");
}

#[test]
fn options_and_caps() {
    let conf = ResolvConf::parse("options ndots:99 timeout:120 attempts:9 rotate\n");
    assert_eq!(conf.ndots, 15);
    assert_eq!(conf.timeout, Duration::from_secs(30));
    assert_eq!(conf.attempts, 5);
    assert!(conf.rotate);
    let conf = ResolvConf::parse("options ndots:0 timeout:0 attempts:0\n");
    assert_eq!(conf.ndots, 0);
    assert_eq!(conf.timeout, Duration::from_secs(1));
    assert_eq!(conf.attempts, 1);
    // Several lines accumulate; unknown and malformed options are ignored; huge numbers saturate.
    let text = "options edns0 ndots:2\noptions timeout:3x attempts:-1 ndots:x\n\
                options ndots:99999999999999999999999999\n";
    let conf = ResolvConf::parse(text);
    assert_eq!(conf.ndots, 15);
    assert_eq!(conf.timeout, Duration::from_secs(3));
    assert_eq!(conf.attempts, 2);
    assert!(!conf.rotate);
}

#[test]
fn comments_and_indentation() {
    let text = "# nameserver 9.9.9.9\n\
                ; nameserver 8.8.8.8\n  nameserver 7.7.7.7\n\
                nameserver 6.6.6.6;comment\n\
                nameservers 5.5.5.5\n\
                search a.example # b.example\n\
                options ndots:3;rotate\n";
    let conf = ResolvConf::parse(text);
    assert_eq!(conf.nameservers, vec![sa("6.6.6.6:53")]);
    assert_eq!(conf.search, vec!["a.example".to_string()]);
    assert_eq!(conf.ndots, 3);
    assert!(!conf.rotate);
    // Windows line endings.
    let conf = ResolvConf::parse("nameserver 1.1.1.1\r\noptions ndots:4\r\n");
    assert_eq!((conf.nameservers[0], conf.ndots), (sa("1.1.1.1:53"), 4));
}
