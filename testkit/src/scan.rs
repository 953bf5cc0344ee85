//! Scanning a state directory's files for a secret. windlass's event log stores a record of 2 KiB
//! or more as a zstd frame, so a search of the raw bytes of `events.redb` would not see into those
//! records: [`scannable_bytes`] adds, after a file's own bytes, every zstd frame found in it,
//! decompressed. It reads the file only (no database is opened), so it works while a test still
//! holds the log open.

/// The four bytes every zstd frame begins with.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Most bytes one frame may expand to here: more than any record windlass stores.
const MAX_FRAME_CONTENT: usize = 16 * 1024 * 1024;

/// The bytes of `file` as a search for a secret must see them: its own bytes, then each zstd
/// frame inside it, decompressed (a frame that does not decompress whole is skipped: the magic
/// bytes may occur by chance, and a stale copy of a page may be cut).
pub fn scannable_bytes(file: &std::path::Path) -> Vec<u8> {
    let raw =
        std::fs::read(file).unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
    let mut bytes = raw.clone();
    let mut decompressor = zstd::bulk::Decompressor::new().expect("a zstd context");
    let mut offset = 0;
    while let Some(found) = raw[offset..]
        .windows(ZSTD_MAGIC.len())
        .position(|window| window == ZSTD_MAGIC)
    {
        let start = offset + found;
        offset = start + 1;
        let Ok(size) = zstd::zstd_safe::find_frame_compressed_size(&raw[start..]) else {
            continue;
        };
        if let Ok(content) = decompressor.decompress(&raw[start..start + size], MAX_FRAME_CONTENT) {
            bytes.push(b'\n');
            bytes.extend(content);
        }
    }
    bytes
}

/// Whether [`scannable_bytes`] of `file` contains `needle`.
pub fn file_holds(file: &std::path::Path, needle: &[u8]) -> bool {
    scannable_bytes(file)
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_inside_a_zstd_frame_in_a_file_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        // Repeated text is compressed to back-references: the needle is not in the frame's bytes.
        let record = format!("{{\"token\":\"{}\"}}", "s3cr3t-".repeat(1000));
        let needle = "s3cr3t-".repeat(5);
        let frame = zstd::bulk::compress(record.as_bytes(), 1).unwrap();
        let mut contents = b"header".to_vec();
        contents.extend(&frame);
        contents.extend(b"trailing page bytes");
        std::fs::write(&file, &contents).unwrap();
        let raw_holds = |needle: &[u8]| {
            contents
                .windows(needle.len())
                .any(|window| window == needle)
        };
        assert!(!raw_holds(needle.as_bytes()), "the raw bytes hide it");
        assert!(file_holds(&file, needle.as_bytes()));
        assert!(!file_holds(&file, b"hunter3"));
    }
}
