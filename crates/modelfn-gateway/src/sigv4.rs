//! AWS Signature Version 4, verified on the server side: the requests of boto3, the AWS
//! CLI and every AWS SDK, signed with a modelfn access key. The canonical request is
//! rebuilt from the request as it arrived (path double-encoded, as non-S3 services sign
//! it; query sorted; the signed headers; the SHA-256 of the body), then the signature is
//! recomputed with the key's secret and compared in constant time.
//!
//! The body is always hashed here: an `X-Amz-Content-SHA256` header is only compared
//! with that hash (a mismatch is refused), never trusted in its place, and
//! `UNSIGNED-PAYLOAD` is refused (Lambda and SageMaker do not take it). The scope's
//! service and region must be this endpoint's, and every `X-Amz-*` header sent must be
//! signed, so that none can be added to a captured request.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What the `Authorization` header says.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a request is not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum SigError {
    /// No `Authorization` header.
    Missing,
    /// The header or `X-Amz-Date` cannot be read.
    Malformed(String),
    /// The signature does not match.
    Mismatch,
    /// `X-Amz-Date` is more than 15 minutes from now.
    Skewed,
    /// `X-Amz-Content-SHA256` is not the SHA-256 of the body that arrived.
    BodyMismatch,
    /// The credential scope names another service or region.
    Scope(String),
}

/// What this endpoint expects of a signature.
pub struct Expect<'a> {
    pub service: &'a str,
    pub region: &'a str,
}

/// Reads `AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/lambda/aws4_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<Authorization, SigError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigError::Malformed("the Authorization header is not AWS4-HMAC-SHA256".into())
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(SigError::Malformed(
            "the Authorization header lacks Credential, SignedHeaders or Signature".into(),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(SigError::Malformed(format!(
            "the credential scope {credential:?} is not KEY/DATE/REGION/SERVICE/aws4_request"
        )));
    }
    Ok(Authorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_string(),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` when asked).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(raw: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The request as it arrived.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path exactly as sent, still percent-encoded.
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The canonical request of SigV4 for `req` under `auth`.
pub fn canonical_request(req: &Request, auth: &Authorization) -> String {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload = hex::encode(Sha256::digest(req.body));
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        encode(req.raw_path, true),
        canonical_query(req.raw_query),
        headers,
        auth.signed_headers.join(";"),
        payload
    )
}

/// Checks what can be checked before the secret is known: the scope, the payload hash
/// header, and that every `X-Amz-*` header is signed.
pub fn check_request(req: &Request, auth: &Authorization, expect: &Expect) -> Result<(), SigError> {
    if auth.service != expect.service || auth.region != expect.region {
        return Err(SigError::Scope(format!(
            "the credential scope is {}/{}, not {}/{}: sign for service {:?} in region {:?}",
            auth.region, auth.service, expect.region, expect.service, expect.service, expect.region
        )));
    }
    if let Some(claimed) = req.headers.get("x-amz-content-sha256") {
        let claimed = claimed.to_str().unwrap_or("");
        if claimed == "UNSIGNED-PAYLOAD" || claimed.starts_with("STREAMING-") {
            return Err(SigError::Malformed(format!(
                "X-Amz-Content-SHA256 {claimed} is not accepted: sign the payload"
            )));
        }
        if !claimed.eq_ignore_ascii_case(&hex::encode(Sha256::digest(req.body))) {
            return Err(SigError::BodyMismatch);
        }
    }
    let unsigned = req
        .headers
        .keys()
        .map(|k| k.as_str())
        .find(|k| k.starts_with("x-amz-") && !auth.signed_headers.iter().any(|h| h == k));
    if let Some(h) = unsigned {
        return Err(SigError::Malformed(format!(
            "the header {h} is not signed: every X-Amz-* header must be in SignedHeaders"
        )));
    }
    Ok(())
}

/// Checks the signature of `req` made with `secret`, and that it is recent (`now` is
/// Unix seconds).
pub fn verify(req: &Request, auth: &Authorization, secret: &str, now: i64) -> Result<(), SigError> {
    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigError::Malformed("X-Amz-Date is missing".into()))?;
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        SigError::Malformed(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"))
    })?;
    if (when - now).abs() > 15 * 60 {
        return Err(SigError::Skewed);
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(SigError::Malformed(
            "the credential date does not match X-Amz-Date".into(),
        ));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Malformed("the Host header must be signed".into()));
    }
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request(req, auth).as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    let k_region = hmac(&k_date, auth.region.as_bytes());
    let k_service = hmac(&k_region, auth.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let expected = hex::encode(hmac(&k_signing, to_sign.as_bytes()));
    let given = auth.signature.as_bytes();
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

/// `20261121T224719Z` → Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(9, 11)?,
        n(11, 13)?,
        n(13, 15)?,
    );
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's own published example (the IAM ListUsers request of the SigV4 documentation).
    #[test]
    fn verifies_the_documented_example() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        )
        .unwrap();
        let req = Request {
            method: "GET",
            raw_path: "/",
            raw_query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &h,
            body: b"",
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now),
            Ok(())
        );
        assert_eq!(verify(&req, &auth, "wrong", now), Err(SigError::Mismatch));
        assert_eq!(
            verify(
                &req,
                &auth,
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                now + 3600
            ),
            Err(SigError::Skewed)
        );
    }

    #[test]
    fn the_body_scope_and_amz_headers_are_checked() {
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20261121/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-amz-date", HeaderValue::from_static("20261121T000000Z"));
        let lambda = Expect {
            service: "lambda",
            region: "us-east-1",
        };
        let req = |h: &HeaderMap, body: &'static [u8]| -> Result<(), SigError> {
            let r = Request {
                method: "POST",
                raw_path: "/",
                raw_query: None,
                headers: h,
                body,
            };
            check_request(&r, &auth, &lambda)
        };
        assert_eq!(req(&h, b"{}"), Ok(()));
        // A hash header that is not the body's.
        let mut h2 = h.clone();
        h2.insert(
            "x-amz-content-sha256",
            HeaderValue::from_str(&hex::encode(Sha256::digest(b"old body"))).unwrap(),
        );
        assert_eq!(req(&h2, b"new body"), Err(SigError::BodyMismatch));
        assert_eq!(
            req(&h2, b"old body").map_err(|_| ()),
            Err(()),
            "unsigned x-amz header"
        );
        h2.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        assert!(matches!(req(&h2, b"x"), Err(SigError::Malformed(_))));
        // An unsigned header that changes behaviour.
        let mut h3 = h.clone();
        h3.insert("x-amz-invocation-type", HeaderValue::from_static("Event"));
        assert!(
            matches!(req(&h3, b"{}"), Err(SigError::Malformed(m)) if m.contains("x-amz-invocation-type"))
        );
        // Another service or region.
        for scope in ["us-east-1/sagemaker", "eu-west-1/lambda"] {
            let other = parse_authorization(&format!(
                "AWS4-HMAC-SHA256 Credential=AK/20261121/{scope}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
            ))
            .unwrap();
            let r = Request {
                method: "POST",
                raw_path: "/",
                raw_query: None,
                headers: &h,
                body: b"{}",
            };
            assert!(matches!(
                check_request(&r, &other, &lambda),
                Err(SigError::Scope(_))
            ));
        }
    }

    #[test]
    fn paths_are_encoded_again_and_queries_sorted() {
        assert_eq!(
            encode("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations", true),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
        );
        assert_eq!(
            canonical_query(Some("b=2&a=1&Qualifier=%24LATEST")),
            "Qualifier=%24LATEST&a=1&b=2"
        );
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert!(parse_authorization("Bearer x").is_err());
    }
}
