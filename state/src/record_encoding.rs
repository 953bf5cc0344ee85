//! How a record's bytes are kept on disk. A record is the JSON [`crate::StoredEvent`] the hash
//! chain hashes, `export` writes and `verify-export` checks; that never changes. A record of
//! [`COMPRESS_FROM_BYTES`] or more is stored as a zstd frame of it (level 1: about 950 MB/s, and
//! records of applied objects, mostly uids and digests, come out about 7 times smaller), a
//! smaller one as itself; a frame carries a checksum of its content. A stored value that begins with zstd's magic number is a frame (a JSON
//! record begins with `{`); anything else is the record. So a log written before compression was
//! added reads as it always did, and nothing stored is ever rewritten.

use std::borrow::Cow;
use std::cell::RefCell;

use crate::event::MAX_PAYLOAD_BYTES;
use crate::store::StoreError;

/// Records from this size on are stored compressed: below it, a frame saves a few hundred bytes
/// at most.
const COMPRESS_FROM_BYTES: usize = 2048;

/// The four bytes every zstd frame begins with.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The largest record a frame may expand to: the largest payload and room for its envelope. A
/// damaged frame claiming more is refused before anything is allocated for it.
const MAX_RECORD_BYTES: u64 = MAX_PAYLOAD_BYTES as u64 + 64 * 1024;

/// zstd's level for records: its fastest standard level.
const LEVEL: i32 = 1;

thread_local! {
    /// This thread's compression context, made once: a fresh one per record costs five times
    /// the compression of a 2 KiB record.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// This thread's decompression context, likewise.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// What is stored for `record`: a zstd frame of it when it is big enough and the frame is
/// smaller, else the record itself.
pub(crate) fn stored_form(record: &[u8]) -> Cow<'_, [u8]> {
    if record.len() < COMPRESS_FROM_BYTES {
        return Cow::Borrowed(record);
    }
    let frame = COMPRESSOR.with_borrow_mut(|held| {
        if held.is_none() {
            let mut compressor = zstd::bulk::Compressor::new(LEVEL)?;
            // A checksum of the content, so that a damaged frame fails as such when read.
            compressor.include_checksum(true)?;
            *held = Some(compressor);
        }
        held.as_mut().expect("made above").compress(record)
    });
    match frame {
        Ok(frame) if frame.len() < record.len() => Cow::Owned(frame),
        _ => Cow::Borrowed(record),
    }
}

/// The record stored as `stored` at `global_seq` (see [`stored_form`]).
pub(crate) fn record_of(global_seq: u64, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Ok(stored.to_vec());
    }
    let corrupt = |reason: String| StoreError::CorruptRecord { global_seq, reason };
    let size = match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(size)) if size <= MAX_RECORD_BYTES => size,
        Ok(Some(size)) => {
            return Err(corrupt(format!(
                "its compressed frame claims {size} bytes, more than a record may hold ({MAX_RECORD_BYTES})"
            )));
        }
        Ok(None) | Err(_) => {
            return Err(corrupt(
                "its compressed frame does not say how big the record is".into(),
            ));
        }
    };
    let record = DECOMPRESSOR
        .with_borrow_mut(|held| {
            if held.is_none() {
                *held = Some(zstd::bulk::Decompressor::new()?);
            }
            held.as_mut()
                .expect("made above")
                .decompress(stored, size as usize)
        })
        .map_err(|error| corrupt(format!("its compressed frame does not decompress: {error}")))?;
    if record.len() as u64 != size {
        return Err(corrupt(format!(
            "its compressed frame holds {} bytes where its header says {size}",
            record.len()
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_record() -> Vec<u8> {
        let objects: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"name":"app-{i}","uid":"{i:08x}-d861-49df-8f47-1eae901ec7d4"}}"#))
            .collect();
        format!(
            r#"{{"global_seq":1,"payload":{{"objects":[{}]}}}}"#,
            objects.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn a_big_record_is_stored_as_a_smaller_frame_and_read_back_exactly() {
        let record = big_record();
        let stored = stored_form(&record);
        assert!(stored.starts_with(&ZSTD_MAGIC));
        assert!(
            stored.len() * 3 < record.len(),
            "{} of {}",
            stored.len(),
            record.len()
        );
        assert_eq!(record_of(1, &stored).unwrap(), record);
    }

    #[test]
    fn a_small_record_and_a_record_of_an_older_log_are_the_stored_bytes() {
        let small = br#"{"global_seq":1,"payload":{}}"#;
        assert!(matches!(stored_form(small), Cow::Borrowed(_)));
        assert_eq!(record_of(1, small).unwrap(), small);
        // Written before compression existed: a big record stored as itself reads as itself.
        let record = big_record();
        assert_eq!(record_of(1, &record).unwrap(), record);
    }

    #[test]
    fn a_damaged_frame_is_a_corrupt_record_naming_it_never_a_panic() {
        let stored = stored_form(&big_record()).into_owned();
        let mut cut = stored.clone();
        cut.truncate(stored.len() / 2);
        let mut flipped = stored.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xFF;
        for damaged in [cut, flipped, ZSTD_MAGIC.to_vec()] {
            match record_of(7, &damaged) {
                Err(StoreError::CorruptRecord { global_seq: 7, .. }) => {}
                Ok(record) => assert_ne!(record, big_record(), "damage went unnoticed"),
                Err(other) => panic!("{other}"),
            }
        }
        // A header claiming more than a record may hold is refused before decompressing.
        let huge = zstd::bulk::compress(&vec![b' '; MAX_RECORD_BYTES as usize + 1], 1).unwrap();
        let Err(StoreError::CorruptRecord { reason, .. }) = record_of(9, &huge) else {
            panic!("an oversized frame was read");
        };
        assert!(reason.contains("more than a record may hold"), "{reason}");
    }
}
