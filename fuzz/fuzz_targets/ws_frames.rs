#![no_main]
use libfuzzer_sys::fuzz_target;
use sidewire::proto::ws::Decoder;

// Layout: byte 0 picks the size limit, bytes 1..9 the chunk sizes (cycled), and the rest
// is the server's byte stream, delivered in those chunks like a socket would.
fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at(rest.len().min(8));
    let max_message = 1usize << (limit % 21);
    let mut dec = Decoder::new(max_message);
    let mut pending = Vec::new();
    let mut fed = 0;
    let mut round = 0;
    while fed < stream.len() {
        let size = sizes.get(round % sizes.len()).map_or(1, |&s| usize::from(s) + 1);
        round += 1;
        let end = stream.len().min(fed + size);
        pending.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            match dec.decode(&pending) {
                Ok((n, event)) => {
                    assert!(n <= pending.len());
                    pending.drain(..n);
                    if event.is_none() {
                        // Only an unfinished header or control frame may be left over.
                        assert!(pending.len() <= 135);
                        break;
                    }
                }
                Err(violation) => {
                    assert!(matches!(violation.code, 1002 | 1007 | 1009));
                    assert_eq!(dec.decode(&pending), Err(violation), "poisoned");
                    return;
                }
            }
        }
    }
});
