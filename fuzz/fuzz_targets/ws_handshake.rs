#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ws::ClientHandshake;

fuzz_target!(|data: &[u8]| {
    // Key of zeros: its accept value is ICX+Yqv66kxgM0FcWaLWlFLwTAI= (used by the seeds).
    let headers = [("Sec-WebSocket-Protocol", "chat")];
    let (handshake, _) = ClientHandshake::new("example.com", "/", &headers, [0; 16]);
    if let Ok(Some(n)) = handshake.parse_response(data) {
        assert!(n <= data.len());
        // The head alone must give the same answer as the head plus frames after it.
        assert_eq!(handshake.parse_response(&data[..n]), Ok(Some(n)));
    }
});
