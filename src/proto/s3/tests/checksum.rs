use crate::proto::s3::checksum::{combine, crc64nvme, from_header, to_header, Crc64Nvme};

#[test]
fn crc64nvme_gives_the_catalogue_check_values() {
    // The CRC catalogue's check value for CRC-64/NVME, and the one AWS's SDKs document.
    assert_eq!(crc64nvme(b"123456789"), 0xae8b_1486_0a79_9888);
    assert_eq!(crc64nvme(b"hello world!"), 0xd916_0d1f_a8e4_18e3);
    assert_eq!(crc64nvme(b""), 0);
}

#[test]
fn pieces_fed_in_turn_or_combined_give_the_whole() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let whole = crc64nvme(&data);
    let mut fed = Crc64Nvme::default();
    for piece in data.chunks(4099) {
        fed.update(piece);
    }
    assert_eq!(fed.value(), whole);
    for cut in [0, 1, 4096, 65_537, data.len()] {
        let (a, b) = data.split_at(cut);
        assert_eq!(combine(crc64nvme(a), crc64nvme(b), b.len() as u64), whole);
    }
}

#[test]
fn the_header_form_is_base64_of_eight_big_endian_bytes() {
    assert_eq!(to_header(0x0102_0304_0506_0708), "AQIDBAUGBwg=");
    assert_eq!(from_header("AQIDBAUGBwg="), Some(0x0102_0304_0506_0708));
    assert_eq!(from_header(" AQIDBAUGBwg= "), Some(0x0102_0304_0506_0708));
    for bad in ["", "AQIDBAUGBw==", "AQIDBAUGBwgJ", "not base64!"] {
        assert_eq!(from_header(bad), None, "{bad}");
    }
}
