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

/// Cells of the edit-distance tables one thread (one compilation: each runs on a thread of
/// its own) may fill for suggestions: about a tenth of a second. Each unknown name is
/// compared with every name in its scope, so thousands of unknown names in a scope of
/// thousands would otherwise take minutes; past the budget, diagnostics go without a
/// suggestion.
const BUDGET_CELLS: u64 = 20_000_000;

thread_local! {
    static BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(BUDGET_CELLS) };
}

/// The closest candidate to `name`, if it is close enough to be a likely typo (none once
/// this thread's [`BUDGET_CELLS`] are spent).
pub fn nearest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let length = name.chars().count();
    let limit = (length.max(3) / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        // A candidate costs one cell at least, so even a scan that compares none is bounded.
        let other = candidate.chars().count();
        let close = other.abs_diff(length) <= limit && candidate != name;
        let cells = if close { (length + 1) * (other + 1) } else { 1 } as u64;
        BUDGET.with(|budget| {
            let left = budget.get().checked_sub(cells);
            budget.set(left.unwrap_or(0));
            left
        })?;
        // The distance is at least the difference in length: no table for those.
        if !close {
            continue;
        }
        let found = (distance(name, candidate), candidate);
        if found.0 <= limit && best.is_none_or(|best| found < best) {
            best = Some(found);
        }
    }
    best.map(|(_, candidate)| candidate)
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

    #[test]
    fn suggestions_stop_once_the_budget_is_spent() {
        std::thread::spawn(|| {
            let names: Vec<String> = (0..20_000).map(|idx| format!("name{idx}")).collect();
            let mut found = 0;
            for idx in 0..20_000 {
                let typo = format!("nmae{idx}");
                found += usize::from(nearest(&typo, names.iter().map(String::as_str)).is_some());
            }
            // The first lookups find their name; the budget ends the search long before
            // 20,000 × 20,000 comparisons.
            assert!(found > 0 && found < 20_000, "{found}");
            assert_eq!(
                nearest("Ordr", ["Order"]),
                None,
                "a spent budget stays spent"
            );
        })
        .join()
        .unwrap();
    }
}
