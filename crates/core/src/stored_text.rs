//! Text as the history and the relay log store it: a zstd frame (webhook
//! JSON shrinks to about 40 %), read back whether it was stored compressed
//! or, before compression, as plain UTF-8.
//!
//! A stored value starting with the zstd frame magic (RFC 8878: 28 B5 2F FD)
//! is compressed. No UTF-8 text can start with it (0xB5 is a continuation
//! byte), so older plain rows read back unchanged.

/// zstd level: the fastest, which already takes a GitHub push to under half
/// its size; it runs once per stored event.
const LEVEL: i32 = 1;

/// Texts shorter than this are compressed at [`SMALL_LEVEL`].
const SMALL: usize = 4096;

/// zstd level for small texts: the first negative level, which leaves
/// literals without Huffman coding. Building the Huffman and FSE tables
/// costs the same for a 1 KB text as for a 25 KB one, so on a 1.2 KB push
/// level 1 took 3.8 µs (41 % of its size) and this 1.9 µs (54 %); on a 25 KB
/// pull request the two differ by 5 % in time and 11 % against 12 % in
/// size, so larger texts keep level 1.
const SMALL_LEVEL: i32 = -1;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

#[derive(Debug, thiserror::Error)]
pub enum StoredTextError {
    #[error("compressing: {0}")]
    Compress(std::io::Error),
    #[error("stored text is not a valid zstd frame: {0}")]
    Decompress(std::io::Error),
    #[error("stored text is not UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}

thread_local! {
    /// One compression context per thread: making a context costs more
    /// than compressing a webhook with it.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static SMALL_COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// `text` as stored: a zstd frame.
pub fn encode(text: &str) -> Result<Vec<u8>, StoredTextError> {
    let (compressor, level) = if text.len() < SMALL {
        (&SMALL_COMPRESSOR, SMALL_LEVEL)
    } else {
        (&COMPRESSOR, LEVEL)
    };
    compressor.with(|c| {
        let mut c = c.borrow_mut();
        let c = match c.as_mut() {
            Some(c) => c,
            None => {
                c.insert(zstd::bulk::Compressor::new(level).map_err(StoredTextError::Compress)?)
            }
        };
        c.compress(text.as_bytes())
            .map_err(StoredTextError::Compress)
    })
}

/// A stored value back as text (a zstd frame, or plain UTF-8).
pub fn decode(stored: Vec<u8>) -> Result<String, StoredTextError> {
    let bytes = if stored.starts_with(&ZSTD_MAGIC) {
        decompress(&stored)?
    } else {
        stored
    };
    Ok(String::from_utf8(bytes)?)
}

/// Largest content size read with the per-thread context in one piece;
/// anything larger (or a frame without a recorded size: not written by us)
/// is read as a stream.
const BULK_LIMIT: u64 = 64 << 20;

/// A frame written by [`encode`] records its content size: it is read with
/// the thread's context (making one per read cost more than the read
/// itself). Anything else is read as a stream.
fn decompress(frame: &[u8]) -> Result<Vec<u8>, StoredTextError> {
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .filter(|n| *n <= BULK_LIMIT)
        .and_then(|n| usize::try_from(n).ok());
    let Some(size) = size else {
        return zstd::stream::decode_all(frame).map_err(StoredTextError::Decompress);
    };
    let bulk = DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        let d = match d.as_mut() {
            Some(d) => d,
            None => d.insert(zstd::bulk::Decompressor::new().map_err(StoredTextError::Decompress)?),
        };
        d.decompress(frame, size)
            .map_err(StoredTextError::Decompress)
    });
    match bulk {
        Ok(text) => Ok(text),
        // Several frames one after the other hold more than the first one
        // says: the stream reader takes them all (and reports real damage).
        Err(_) => zstd::stream::decode_all(frame).map_err(StoredTextError::Decompress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_shrinks_json() {
        let text = serde_json::json!({
            "commits": (0..20).map(|i| format!("https://github.com/acme/api/commit/{i}")).collect::<Vec<_>>()
        })
        .to_string();
        let stored = encode(&text).expect("compresses");
        assert!(
            stored.len() * 3 < text.len(),
            "{} of {}",
            stored.len(),
            text.len()
        );
        assert_eq!(decode(stored).expect("decodes"), text);
        assert_eq!(
            decode(encode("").expect("compresses")).expect("decodes"),
            ""
        );
    }

    #[test]
    fn concatenated_frames_read_back_whole() {
        let (a, b) = ("first frame ".repeat(20), "second frame ".repeat(30));
        let mut stored = encode(&a).expect("compresses");
        stored.extend(encode(&b).expect("compresses"));
        assert_eq!(decode(stored).expect("decodes"), a + &b);
    }

    #[test]
    fn plain_text_reads_back_unchanged() {
        assert_eq!(decode(b"{\"a\":1}".to_vec()).expect("plain"), "{\"a\":1}");
        assert_eq!(
            decode("(µ text".as_bytes().to_vec()).expect("plain"),
            "(µ text"
        );
    }

    #[test]
    fn damage_is_an_error_not_garbage() {
        let mut stored = encode("hello hello hello hello").expect("compresses");
        stored.truncate(stored.len() - 3);
        assert!(matches!(
            decode(stored),
            Err(StoredTextError::Decompress(_))
        ));
        assert!(matches!(
            decode(vec![0xff, 0xfe]),
            Err(StoredTextError::NotUtf8(_))
        ));
    }
}
