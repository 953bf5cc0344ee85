//! Uniform picks from a character set with bytes from an [`Entropy`]: four bytes per pick,
//! rejecting the values that would bias the choice.

use crate::entropy::Entropy;

/// `length` characters drawn uniformly from `characters` (not empty).
pub fn pick(entropy: &dyn Entropy, characters: &[char], length: usize) -> Result<String, String> {
    let size = characters.len() as u64;
    let limit = (u64::from(u32::MAX) + 1) / size * size;
    let mut picked = String::with_capacity(length);
    let mut count = 0;
    while count < length {
        let missing = length - count;
        let mut bytes = vec![0u8; missing * 4];
        entropy.fill(&mut bytes)?;
        for chunk in bytes.chunks_exact(4) {
            let value = u64::from(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
            if value < limit && count < length {
                picked.push(characters[(value % size) as usize]);
                count += 1;
            }
        }
    }
    Ok(picked)
}
