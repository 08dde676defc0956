//! Levenshtein distance over bytes, bounded: the check every fuzzy candidate passes.
//!
//! Invariants:
//! - [`within`] returns `Some(d)` exactly when the edit distance (unit-cost insert, delete,
//!   substitute, over bytes) of its arguments is `d <= max`; it stops as soon as every cell of a
//!   row exceeds `max`, so a hopeless candidate costs one row or a length comparison.
//! - Memory is two rows of `b.len() + 1` cells.

/// The edit distance of `a` and `b` if it is at most `max`.
pub(crate) fn within(a: &[u8], b: &[u8], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len().saturating_add(1)];
    for (i, &byte_a) in a.iter().enumerate() {
        let mut row_min = i.saturating_add(1);
        if let Some(first) = current.first_mut() {
            *first = row_min;
        }
        for (j, &byte_b) in b.iter().enumerate() {
            let substitute = previous.get(j).map_or(usize::MAX, |&d| {
                d.saturating_add(usize::from(byte_a != byte_b))
            });
            let delete = previous
                .get(j.saturating_add(1))
                .map_or(usize::MAX, |&d| d.saturating_add(1));
            let insert = current.get(j).map_or(usize::MAX, |&d| d.saturating_add(1));
            let cell = substitute.min(delete).min(insert);
            if let Some(slot) = current.get_mut(j.saturating_add(1)) {
                *slot = cell;
            }
            row_min = row_min.min(cell);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous.last().copied().filter(|&d| d <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook full-matrix distance, unbounded.
    fn reference(a: &[u8], b: &[u8]) -> usize {
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        d[0] = (0..=b.len()).collect();
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn agrees_with_the_full_matrix() {
        let words: [&[u8]; 9] = [
            b"",
            b"a",
            b"ab",
            b"kitten",
            b"sitting",
            b"k_0000123",
            b"k_0001123",
            b"abcabc",
            b"cab",
        ];
        for a in words {
            for b in words {
                let d = reference(a, b);
                for max in 0..8 {
                    assert_eq!(
                        within(a, b, max),
                        (d <= max).then_some(d),
                        "{a:?} {b:?} {max}"
                    );
                }
            }
        }
    }
}
