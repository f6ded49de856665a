//! A WebSocket server that breaks RFC 6455 gets the right close code before the TCP
//! close (1002 protocol error, 1007 invalid UTF-8, 1009 too big), a bad handshake gets no
//! frame at all, and ctrl keeps re-dialling and stays up.

mod common;

use std::time::Duration;

use common::pod::{pod_dir, Pod};
use common::{BadServer, Misbehaviour, ServiceConfig};

fn check(what: Misbehaviour) {
    let server = BadServer::start(what);
    let dir = pod_dir(&format!(
        "bad-{}",
        format!("{what:?}").replace(['(', ')'], "-")
    ));
    let ctrl = Pod::start_ctrl(&dir, &ServiceConfig::default(), server.port(), &[]);
    let mut pod = Pod {
        dir,
        ctrl,
        agent: None,
    };
    assert!(
        server.wait_connections(2, Duration::from_secs(20)),
        "{what:?}: ctrl did not dial again"
    );
    assert_eq!(pod.ctrl.try_wait().unwrap(), None, "{what:?}: ctrl exited");
    let codes = server.close_codes();
    assert_eq!(
        codes[0],
        what.expected_close_code(),
        "{what:?}: close code (all: {codes:?})"
    );
    if what.is_bad_handshake() {
        assert_eq!(
            server.frames_after_bad_handshake(),
            0,
            "{what:?}: frames sent after a failed handshake"
        );
    }
}

macro_rules! cases {
    ($($name:ident: $what:expr,)*) => {$(
        #[test]
        fn $name() {
            check($what);
        }
    )*};
}

cases! {
    masked_server_frame_is_1002: Misbehaviour::MaskedFrame,
    rsv_bit_is_1002: Misbehaviour::Rsv1,
    reserved_data_opcode_is_1002: Misbehaviour::ReservedOpcode(3),
    reserved_control_opcode_is_1002: Misbehaviour::ReservedOpcode(0xB),
    fragmented_ping_is_1002: Misbehaviour::FragmentedPing,
    long_ping_is_1002: Misbehaviour::LongPing,
    orphan_continuation_is_1002: Misbehaviour::OrphanContinuation,
    close_code_1005_on_the_wire_is_1002: Misbehaviour::BadCloseCode(1005),
    close_code_999_is_1002: Misbehaviour::BadCloseCode(999),
    close_payload_of_one_byte_is_1002: Misbehaviour::CloseLen1,
    invalid_utf8_text_is_1007: Misbehaviour::InvalidUtf8Text,
    invalid_utf8_across_fragments_is_1007: Misbehaviour::InvalidUtf8Fragmented,
    oversized_message_is_1009: Misbehaviour::Oversized(64 << 20),
    bad_accept_gets_no_frames: Misbehaviour::BadAccept,
    refused_upgrade_gets_no_frames: Misbehaviour::Status(403),
    missing_upgrade_header_gets_no_frames: Misbehaviour::NoUpgrade,
}
