//! Parsing the YAML of a build on every core. serde-saphyr needs tens of microseconds per
//! workload document, so a release of 10,000 files (and a patch file of 10,000 documents) is
//! parsed in parallel: files side by side, and a large file in pieces cut at its `---` lines
//! (where [`windlass_manifest::documents::split_documents`] cuts it too), with document numbers and lines
//! shifted back so messages name the file's own.

use windlass_manifest::documents::{Document, DocumentError, Reuse, parse_documents_with};
use windlass_manifest::parallel::{parallel_map, threads};

/// Files smaller than this are parsed in one piece.
const PIECE_BYTES: usize = 256 * 1024;

/// A piece of a file: its text and the line it starts on (from 0).
struct Piece<'a> {
    text: &'a str,
    first_line: usize,
}

/// Cuts `text` into about `count` pieces at lines that are exactly `---`.
fn cut(text: &str, count: usize) -> Vec<Piece<'_>> {
    let target = text.len().div_ceil(count.max(1));
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut start_line = 0;
    let mut offset = 0;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" && offset > start && offset - start >= target {
            pieces.push(Piece {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = number;
        }
        offset += line.len();
    }
    pieces.push(Piece {
        text: &text[start..],
        first_line: start_line,
    });
    pieces
}

/// [`parse_documents_with`] of one file, large files in parallel pieces.
pub(crate) fn parse_file(
    file: &str,
    bytes: &[u8],
    reuse: Reuse<'_>,
) -> Result<Vec<Document>, DocumentError> {
    if bytes.len() < PIECE_BYTES || threads() < 2 {
        return parse_documents_with(file, bytes, reuse);
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return parse_documents_with(file, bytes, reuse);
    };
    let pieces = cut(text, threads() * 4);
    let parsed = parallel_map(&pieces, 2, |piece| {
        parse_documents_with(file, piece.text.as_bytes(), reuse)
    });
    let mut documents = Vec::new();
    for (piece, result) in pieces.iter().zip(parsed) {
        let before = documents.len();
        match result {
            Ok(piece_documents) => {
                documents.extend(piece_documents.into_iter().map(|mut document| {
                    document.index += before;
                    document.line += piece.first_line;
                    document
                }));
            }
            Err(mut error) => {
                error.document += before;
                error.line += piece.first_line;
                return Err(error);
            }
        }
    }
    Ok(documents)
}
