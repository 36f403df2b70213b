//! A reader between the gzip decoder and the `tar` crate that follows the archive's
//! headers as the bytes stream past, and stops any extension header (GNU long names
//! and link names, PAX records) larger than [`MAX_EXTENSION_BYTES`] before `tar` reads
//! it into memory. Without it, a 1 MB package holding a 1 GB long-name header makes the
//! server allocate 1 GB.
//!
//! It tracks what `tar` itself honours when finding the next header: the size field
//! (octal or base-256), the padding to 512 bytes, GNU sparse extension blocks, and a PAX
//! `size` record that overrides the next entry's size.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

/// The largest extension header accepted (PATH_MAX is 4096; PAX records are short).
pub const MAX_EXTENSION_BYTES: u64 = 64 * 1024;

const BLOCK: u64 = 512;

enum State {
    /// Collecting a 512-byte header.
    Header,
    /// GNU sparse extension blocks follow the header.
    SparseExt,
    /// Inside an entry's data (and padding) until `until`; PAX data is kept to parse.
    Data { until: u64, pax: Option<Vec<u8>> },
}

/// Wraps `inner`; a refusal is also recorded in the shared cell, for the caller's message.
pub struct TarGuard<R> {
    inner: R,
    pos: u64,
    block: Vec<u8>,
    state: State,
    /// The size a PAX `size` record set for the next entry.
    pax_size: Option<u64>,
    /// The data size of the entry whose header was read last.
    next_size: u64,
    pub refused: Rc<RefCell<Option<String>>>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            pos: 0,
            block: Vec::with_capacity(BLOCK as usize),
            state: State::Header,
            pax_size: None,
            next_size: 0,
            refused: Rc::new(RefCell::new(None)),
        }
    }

    fn refuse(&self, why: String) -> io::Error {
        *self.refused.borrow_mut() = Some(why.clone());
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    /// Follows `bytes`, which start at `self.pos`.
    fn follow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Header | State::SparseExt => {
                    let take = (BLOCK as usize - self.block.len()).min(bytes.len());
                    self.block.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    self.pos += take as u64;
                    if self.block.len() == BLOCK as usize {
                        let block = std::mem::take(&mut self.block);
                        self.block.reserve(BLOCK as usize);
                        self.on_block(&block)?;
                    }
                }
                State::Data { until, pax } => {
                    let take = ((*until - self.pos) as usize).min(bytes.len());
                    if let Some(p) = pax {
                        p.extend_from_slice(&bytes[..take]);
                    }
                    bytes = &bytes[take..];
                    self.pos += take as u64;
                    if self.pos == *until {
                        if let Some(p) = pax.take() {
                            self.pax_size = pax_size(&p).or(self.pax_size);
                        }
                        self.state = State::Header;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_block(&mut self, h: &[u8]) -> io::Result<()> {
        if matches!(self.state, State::SparseExt) {
            // Another extension block follows while byte 504 is set.
            if h[504] == 0 {
                self.start_data(self.next_size, None)?;
            }
            return Ok(());
        }
        if h.iter().all(|b| *b == 0) {
            return Ok(()); // end-of-archive blocks
        }
        let kind = h[156];
        let size = header_size(h)
            .ok_or_else(|| self.refuse("a tar header has an unreadable size".into()))?;
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if extension && size > MAX_EXTENSION_BYTES {
            return Err(self.refuse(format!(
                "a tar extension header (type '{}') of {size} bytes; at most {MAX_EXTENSION_BYTES} are accepted",
                kind as char
            )));
        }
        let size = if extension {
            size
        } else {
            self.pax_size.take().unwrap_or(size)
        };
        self.next_size = size;
        if kind == b'S' && h[482] != 0 {
            self.state = State::SparseExt;
            return Ok(());
        }
        let pax = (kind == b'x').then(Vec::new);
        self.start_data(size, pax)
    }

    fn start_data(&mut self, size: u64, pax: Option<Vec<u8>>) -> io::Result<()> {
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s / BLOCK * BLOCK)
            .ok_or_else(|| self.refuse("a tar entry's size overflows".into()))?;
        if padded == 0 {
            self.state = State::Header;
            return Ok(());
        }
        self.state = State::Data {
            until: self.pos + padded,
            pax,
        };
        Ok(())
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = self.refused.borrow().clone() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        let n = self.inner.read(buf)?;
        self.follow(&buf[..n])?;
        Ok(n)
    }
}

/// The size field of a header: octal, or base-256 when its high bit is set.
fn header_size(h: &[u8]) -> Option<u64> {
    let field = &h[124..136];
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The `size` record of PAX extension data (`"%d size=%d\n"` records).
fn pax_size(data: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|rec| {
        let (_, kv) = rec.split_once(' ')?;
        kv.strip_prefix("size=")?.trim().parse().ok()
    })
}
