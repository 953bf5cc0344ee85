//! A line diff of two texts as a unified diff (`---`/`+++` headers, `@@` hunks with three lines
//! of context), with the counts of lines added and removed for a summary line. Common prefix and
//! suffix are trimmed first; the middle is diffed by longest common subsequence when it is small
//! enough, and otherwise shown as replaced whole.

/// A unified diff and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDiff {
    /// The diff text (empty when the texts are equal).
    pub unified: String,
    /// Lines only in the new text.
    pub added: u64,
    /// Lines only in the old text.
    pub removed: u64,
}

/// The middle part a full LCS is computed for, in cells (old lines × new lines).
const LCS_CELLS: usize = 4_000_000;
const CONTEXT: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// Diffs `old` against `new`, naming them `old_name` and `new_name` in the headers.
pub fn unified_diff(old_name: &str, new_name: &str, old: &str, new: &str) -> TextDiff {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = line_ops(&old_lines, &new_lines);
    let added = ops.iter().filter(|op| op.0 == Op::Added).count() as u64;
    let removed = ops.iter().filter(|op| op.0 == Op::Removed).count() as u64;
    if added == 0 && removed == 0 {
        return TextDiff {
            unified: String::new(),
            added,
            removed,
        };
    }
    let mut unified = format!("--- {old_name}\n+++ {new_name}\n");
    // Hunks: runs of changes with CONTEXT lines around them, merged when close.
    let changed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].0 != Op::Same).collect();
    let mut start = 0;
    while start < changed.len() {
        let mut end = start;
        while end + 1 < changed.len() && changed[end + 1] - changed[end] <= 2 * CONTEXT {
            end += 1;
        }
        let from = changed[start].saturating_sub(CONTEXT);
        let to = (changed[end] + CONTEXT + 1).min(ops.len());
        let (mut old_start, mut new_start) = (1, 1);
        for op in &ops[..from] {
            match op.0 {
                Op::Same => {
                    old_start += 1;
                    new_start += 1;
                }
                Op::Removed => old_start += 1,
                Op::Added => new_start += 1,
            }
        }
        let old_count = ops[from..to].iter().filter(|op| op.0 != Op::Added).count();
        let new_count = ops[from..to]
            .iter()
            .filter(|op| op.0 != Op::Removed)
            .count();
        unified.push_str(&format!(
            "@@ -{old_start},{old_count} +{new_start},{new_count} @@\n"
        ));
        for (op, line) in &ops[from..to] {
            unified.push(match op {
                Op::Same => ' ',
                Op::Removed => '-',
                Op::Added => '+',
            });
            unified.push_str(line);
            if !line.ends_with('\n') {
                unified.push_str("\n\\ No newline at end of file\n");
            }
        }
        start = end + 1;
    }
    TextDiff {
        unified,
        added,
        removed,
    }
}

fn line_ops<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Op, &'a str)> {
    let prefix = old
        .iter()
        .zip(new.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_middle = &old[prefix..old.len() - suffix];
    let new_middle = &new[prefix..new.len() - suffix];
    let mut ops: Vec<(Op, &str)> = old[..prefix].iter().map(|line| (Op::Same, *line)).collect();
    if old_middle.len().saturating_mul(new_middle.len()) <= LCS_CELLS {
        ops.extend(lcs_ops(old_middle, new_middle));
    } else {
        ops.extend(old_middle.iter().map(|line| (Op::Removed, *line)));
        ops.extend(new_middle.iter().map(|line| (Op::Added, *line)));
    }
    ops.extend(
        old[old.len() - suffix..]
            .iter()
            .map(|line| (Op::Same, *line)),
    );
    ops
}

fn lcs_ops<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (old.len(), new.len());
    // lengths[i][j]: LCS of old[i..] and new[j..].
    let mut lengths = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lengths[at(i, j)] = if old[i] == new[j] {
                lengths[at(i + 1, j + 1)] + 1
            } else {
                lengths[at(i + 1, j)].max(lengths[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push((Op::Same, old[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lengths[at(i + 1, j)] >= lengths[at(i, j + 1)]) {
            ops.push((Op::Removed, old[i]));
            i += 1;
        } else {
            ops.push((Op::Added, new[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_changed_line_gives_one_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = unified_diff("a/x", "b/x", old, new);
        assert_eq!((diff.added, diff.removed), (1, 1));
        assert_eq!(
            diff.unified,
            "--- a/x\n+++ b/x\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn equal_texts_give_no_diff() {
        let diff = unified_diff("a", "b", "x\n", "x\n");
        assert!(diff.unified.is_empty());
    }
}
