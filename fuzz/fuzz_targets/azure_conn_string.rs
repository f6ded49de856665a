#![no_main]
//! Azure connection strings: any text (and account from the URL) parses or is refused
//! with an error that never repeats the account key; an accepted account has a host, a
//! port and a non-empty credential, and its requests write a valid head.
use libfuzzer_sys::fuzz_target;
use sidewire::proto::azure::{self, parse_conn_string, AzureAuth, ConnStringError, MAX_LEN};
use sidewire::proto::http::Body;

fuzz_target!(|data: &[u8]| {
    let whole = String::from_utf8_lossy(data);
    let (url_account, text) = whole.split_once('\n').unwrap_or(("acct", &whole));
    match parse_conn_string(text, url_account) {
        Err(e) => {
            let message = e.to_string();
            if matches!(e, ConnStringError::BadAccountKey) {
                assert_eq!(message, "AccountKey is not base64");
            }
            // A key-like value (base64 letters only, so no fixed wording can hold it) that
            // appears once in the input never shows in the message.
            let key = text
                .split(';')
                .find_map(|s| s.trim().strip_prefix("AccountKey="))
                .map(str::trim)
                .filter(|k| k.len() >= 16 && whole.matches(*k).count() == 1)
                .filter(|k| {
                    k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                });
            if let Some(key) = key {
                assert!(!message.contains(key), "{message}");
            }
        }
        Ok(account) => {
            assert!(text.len() <= MAX_LEN);
            assert!(!account.name.is_empty() && !account.endpoint.host.is_empty());
            assert!(account.endpoint.port != 0);
            assert!(!account.endpoint.path.ends_with('/'));
            if let AzureAuth::SharedKey(key) = &account.auth {
                assert!(!key.is_empty());
            }
            let mut request = azure::get_blob("cont", "a b/c", Some((0, 9)));
            request.sign(&account, 0, std::time::UNIX_EPOCH);
            let mut head = Vec::new();
            // A SAS or path with bytes a request target cannot hold is refused, not sent.
            let _ = request.write_head(&mut head, &account, Body::None);
        }
    }
});
