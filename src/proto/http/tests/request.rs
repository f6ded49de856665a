use super::*;

#[test]
fn write_request_exact_output() {
    let mut out = b"prefix".to_vec();
    write_request(
        &mut out,
        "GET",
        "/b/k?x=1",
        "s3.example:9000",
        &[("X-Amz-Date", "20240101T000000Z"), ("Accept", "*/*")],
        Body::None,
    )
    .unwrap();
    assert_eq!(
        out,
        b"prefixGET /b/k?x=1 HTTP/1.1\r\nHost: s3.example:9000\r\nX-Amz-Date: 20240101T000000Z\r\nAccept: */*\r\n\r\n"
    );
    let mut out = Vec::new();
    write_request(
        &mut out,
        "POST",
        "/api/auth/jwt/refresh_token",
        "svc",
        &[("Content-Type", "application/json")],
        Body::Bytes(b"{\"token\":\"t\"}"),
    )
    .unwrap();
    assert_eq!(
        out,
        b"POST /api/auth/jwt/refresh_token HTTP/1.1\r\nHost: svc\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}"
    );
    let mut out = Vec::new();
    write_request(&mut out, "PUT", "/b/k", "h", &[], Body::Streamed(1 << 40)).unwrap();
    assert_eq!(
        out,
        b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1099511627776\r\n\r\n"
    );
}

#[test]
fn write_request_rejects_injection() {
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        RequestError,
    );
    let cases: [Case<'_>; 12] = [
        ("GET\r\nX: y", "/", "h", &[], RequestError::InvalidMethod),
        ("", "/", "h", &[], RequestError::InvalidMethod),
        ("G T", "/", "h", &[], RequestError::InvalidMethod),
        (
            "GET",
            "/ HTTP/1.1\r\nX: y",
            "h",
            &[],
            RequestError::InvalidTarget,
        ),
        ("GET", "/a\0", "h", &[], RequestError::InvalidTarget),
        ("GET", "", "h", &[], RequestError::InvalidTarget),
        ("GET", "/", "h\nX: y", &[], RequestError::InvalidHost),
        ("GET", "/", "", &[], RequestError::InvalidHost),
        (
            "GET",
            "/",
            "h",
            &[("X: y\r\nZ", "v")],
            RequestError::InvalidHeaderName("X: y\r\nZ".into()),
        ),
        (
            "GET",
            "/",
            "h",
            &[("X", "v\r\n\r\nGET /evil")],
            RequestError::InvalidHeaderValue("X".into()),
        ),
        (
            "GET",
            "/",
            "h",
            &[("X", "a\0b")],
            RequestError::InvalidHeaderValue("X".into()),
        ),
        (
            "GET",
            "/",
            "h",
            &[("content-LENGTH", "0")],
            RequestError::ReservedHeader("content-LENGTH".into()),
        ),
    ];
    for (method, target, host, headers, want) in cases {
        let mut out = b"keep".to_vec();
        let got = write_request(&mut out, method, target, host, headers, Body::Bytes(b"x"));
        assert_eq!(got, Err(want));
        assert_eq!(out, b"keep", "nothing written on error");
    }
    let mut out = Vec::new();
    let e = write_request(&mut out, "GET", "/", "h", &[("Host", "other")], Body::None).unwrap_err();
    assert_eq!(e, RequestError::ReservedHeader("Host".into()));
    assert!(e.to_string().contains("Host"));
    write_request(&mut out, "GET", "/", "h", &[("X", "tab\tok")], Body::None).unwrap();
}
