//! Short text kept inline (no allocation on the request path, nor a free of another
//! thread's memory on a writer thread); boxed when long.

/// Text kept inline when short, so that a record costs the request path no allocation
/// (nor the writer thread a free of another thread's memory); boxed when long.
pub(crate) enum Text {
    Inline { len: u8, buf: [u8; 64] },
    Boxed(Box<str>),
}

impl Text {
    pub(crate) fn new(s: &str) -> Text {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= 64 => {
                let mut buf = [0u8; 64];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                Text::Inline { len, buf }
            }
            _ => Text::Boxed(s.into()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // A whole `&str` was copied in, so its bytes are UTF-8.
            Text::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            Text::Boxed(b) => b,
        }
    }
}
