//! "Did you mean" suggestions: the nearest candidate by edit distance above a similarity bar.

/// Edit distance over chars, case-insensitive, counting a swap of neighbours as one edit
/// (optimal string alignment).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        table[i * width] = i;
    }
    for (j, cell) in table.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub fn nearest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (name.chars().count().max(3) / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// A help line naming the nearest candidate, or the fallback.
pub fn did_you_mean<'a, I>(name: &str, candidates: I, fallback: &str) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match nearest(name, candidates) {
        Some(found) => format!("did you mean `{found}`?"),
        None => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names_only() {
        assert_eq!(nearest("Ordr", ["Order", "Refund"]), Some("Order"));
        assert_eq!(nearest("xyz", ["Order", "Refund"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(nearest("retyr", ["retry"]), Some("retry"));
        assert_eq!(nearest("piad", ["paid"]), Some("paid"));
    }
}
