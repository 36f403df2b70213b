//! An invocation's trace identity: its trace id and the caller's span (from a W3C
//! `traceparent` or an `X-Amzn-Trace-Id`, as [`crate::invocation::trace_header`] keeps
//! them), or, when the caller sent none, ids derived from the request id. The ids of the
//! spans modelfn makes are derived the same way, so a trace reads the same whenever it is
//! built, and a code function's `_X_AMZN_TRACE_ID` names the span that ran it.

/// The numbers of modelfn's spans in an invocation's trace (see [`TraceIds::span_id`]).
pub mod span {
    pub const ROOT: u64 = 0;
    pub const AUTHENTICATE: u64 = 1;
    pub const ROUTE: u64 = 2;
    pub const QUEUE: u64 = 3;
    pub const INSTANCE_START: u64 = 4;
    pub const MODEL_LOAD: u64 = 5;
    pub const RUN: u64 = 6;
    pub const BATCH: u64 = 7;
}

/// Who an invocation's trace belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    /// The caller's span, the parent of modelfn's root span.
    pub caller_span: Option<[u8; 8]>,
    /// Whether the caller sampled the trace (`None`: it did not say, or sent no trace).
    pub caller_sampled: Option<bool>,
    /// Seed of the span ids (from the request id).
    seed: u64,
}

impl TraceIds {
    /// The ids of an invocation with `trace` (Lambda's form, `Root=1-…;Parent=…;Sampled=…`)
    /// and `request_id`.
    pub fn of(trace: Option<&str>, request_id: &str) -> TraceIds {
        let seed = hash(request_id, 0);
        if let Some(ids) = trace.and_then(|t| parse(t, seed)) {
            return ids;
        }
        // A request id is a version-4 UUID: its 32 hex digits are random enough.
        let mut trace_id = [0u8; 16];
        let mut digits = request_id.bytes().filter(u8::is_ascii_hexdigit);
        let mut n = 0;
        for byte in trace_id.iter_mut() {
            match (digits.next(), digits.next()) {
                (Some(h), Some(l)) => {
                    *byte = (nibble(h) << 4) | nibble(l);
                    n += 1;
                }
                _ => break,
            }
        }
        if n < 16 || trace_id.iter().all(|b| *b == 0) {
            trace_id[..8].copy_from_slice(&hash(request_id, 1).to_be_bytes());
            trace_id[8..].copy_from_slice(&hash(request_id, 2).to_be_bytes());
        }
        TraceIds {
            trace_id,
            caller_span: None,
            caller_sampled: None,
            seed,
        }
    }

    /// The id of modelfn's span number `k` (0 is the invocation's root span). Never zero.
    pub fn span_id(&self, k: u64) -> [u8; 8] {
        let id = splitmix64(self.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        id.max(1).to_be_bytes()
    }

    /// The low 7 bytes of the trace id (56 bits), which W3C Trace Context Level 2 asks to
    /// be random, for a sampler to compare with a ratio of 2^56. (The 8th byte from the
    /// right is not random in ids made from a UUID: it holds the variant bits.)
    pub fn sample_key(&self) -> u64 {
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&self.trace_id[9..]);
        u64::from_be_bytes(low)
    }

    /// [`TraceIds::sample_key`] of a call without a caller's trace, read straight from
    /// the request id's last 14 hex digits (what [`TraceIds::of`] would put there) without
    /// making the rest: it runs for every invocation a sampler looks at.
    pub fn sample_key_of_request(request_id: &str) -> u64 {
        let mut key: u64 = 0;
        let mut n = 0;
        for b in request_id
            .bytes()
            .rev()
            .filter(u8::is_ascii_hexdigit)
            .take(14)
        {
            key |= u64::from(nibble(b)) << (4 * n);
            n += 1;
        }
        if n == 14 && request_id.bytes().filter(u8::is_ascii_hexdigit).count() == 32 {
            key
        } else {
            TraceIds::of(None, request_id).sample_key()
        }
    }

    /// What [`TraceIds::sample_key`] is compared with to keep `ratio` (0 to 1) of traces.
    pub fn sample_threshold(ratio: f64) -> u64 {
        (ratio.clamp(0.0, 1.0) * (1u64 << 56) as f64) as u64
    }

    pub fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// Lambda's trace header for a code function run under span `span`:
    /// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`.
    pub fn lambda_header(&self, span: [u8; 8], sampled: bool) -> String {
        let t = self.trace_hex();
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &t[..8],
            &t[8..],
            hex(&span),
            u8::from(sampled)
        )
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn nibble(h: u8) -> u8 {
    match h {
        b'0'..=b'9' => h - b'0',
        b'a'..=b'f' => h - b'a' + 10,
        b'A'..=b'F' => h - b'A' + 10,
        _ => 0,
    }
}

/// FNV-1a over `s`, mixed: the same on every node and run, and cheap (it runs for every
/// invocation an observer looks at).
fn hash(s: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reads `Root=1-<8 hex>-<24 hex>[;Parent=<16 hex>][;Sampled=<0|1>]`.
fn parse(trace: &str, seed: u64) -> Option<TraceIds> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = None;
    for part in trace.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v),
            Some(("Parent", v)) => parent = Some(v),
            Some(("Sampled", "1")) => sampled = Some(true),
            Some(("Sampled", "0")) => sampled = Some(false),
            _ => {}
        }
    }
    let root = root?.strip_prefix("1-")?;
    let (time, rest) = root.split_once('-')?;
    let digits: Vec<u8> = time.bytes().chain(rest.bytes()).collect();
    if time.len() != 8 || digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, pair) in digits.chunks(2).enumerate() {
        trace_id[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    let caller_span = parent
        .filter(|p| p.len() == 16 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|p| {
            let mut span = [0u8; 8];
            for (i, pair) in p.as_bytes().chunks(2).enumerate() {
                span[i] = (nibble(pair[0]) << 4) | nibble(pair[1]);
            }
            span
        });
    Some(TraceIds {
        trace_id,
        caller_span,
        caller_sampled: sampled,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-4 UUID's text, from `i` (its variant and version bits as UUIDs have them).
    fn uuid_like(i: u32) -> String {
        let h = splitmix64(u64::from(i));
        let g = splitmix64(h);
        let t = format!("{h:016x}{g:016x}");
        format!(
            "{}-{}-4{}-a{}-{}",
            &t[..8],
            &t[8..12],
            &t[13..16],
            &t[17..20],
            &t[20..32]
        )
    }

    #[test]
    fn a_callers_trace_is_kept_and_a_request_id_makes_one() {
        let t = TraceIds::of(
            Some("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"),
            "r1",
        );
        assert_eq!(t.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.caller_span.map(|s| hex(&s)).as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(t.caller_sampled, Some(true));

        let id = "0b7f4d7e-9a35-4a3c-9f7e-2c1d6f0e8a11";
        let t = TraceIds::of(None, id);
        assert_eq!(t.trace_hex(), "0b7f4d7e9a354a3c9f7e2c1d6f0e8a11");
        assert_eq!((t.caller_span, t.caller_sampled), (None, None));
        // Span ids are stable, distinct and never zero; a short id still makes a trace.
        assert_eq!(t.span_id(3), TraceIds::of(None, id).span_id(3));
        assert_ne!(t.span_id(0), t.span_id(1));
        let short = TraceIds::of(Some("garbage"), "test-event");
        assert_ne!(short.trace_id, [0; 16]);
        // The short way to a request id's sample key is the long way's.
        for i in 0..100 {
            let id = uuid_like(i);
            let key = TraceIds::of(None, &id).sample_key();
            assert_eq!(TraceIds::sample_key_of_request(&id), key, "{id}");
        }
        for odd in ["test-event", "0b7f4d7e-9a35-4a3c-9f7e-2c1d6f0e8a11-shadow"] {
            assert_eq!(
                TraceIds::sample_key_of_request(odd),
                TraceIds::of(None, odd).sample_key(),
                "{odd}"
            );
        }
        // A ratio keeps that share of request ids' traces.
        let tenth = TraceIds::sample_threshold(0.1);
        let kept = (0..20_000u32)
            .filter(|i| {
                let id = uuid_like(*i);
                TraceIds::of(None, &id).sample_key() < tenth
            })
            .count();
        assert!((1700..=2300).contains(&kept), "{kept} of 20000");
        assert!(t
            .lambda_header(t.span_id(0), true)
            .starts_with("Root=1-0b7f4d7e-9a354a3c9f7e2c1d6f0e8a11;Parent="));
    }
}
