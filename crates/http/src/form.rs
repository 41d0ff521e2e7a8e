//! `application/x-www-form-urlencoded` text (query strings and form bodies) as pairs, for
//! the console's forms and the sandbox's query strings.

/// The pairs of `text`, decoded (`+` is a space, `%XX` a byte; bad escapes stay as they
/// are, invalid UTF-8 becomes U+FFFD).
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The first value of `name` (empty when absent).
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Decodes `%XX` escapes and `+` as a space (a bad escape stays as it is, invalid UTF-8
/// becomes U+FFFD).
pub fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded() {
        let pairs = parse("q=amazon%3A113-1&flow=a+b&bad=%zz&end=%4&empty=&flag");
        assert_eq!(get(&pairs, "q"), "amazon:113-1");
        assert_eq!(get(&pairs, "flow"), "a b");
        assert_eq!(get(&pairs, "bad"), "%zz");
        assert_eq!(get(&pairs, "end"), "%4");
        assert_eq!(get(&pairs, "empty"), "");
        assert_eq!(get(&pairs, "flag"), "");
        assert_eq!(get(&pairs, "missing"), "");
        assert_eq!(get(&parse("x=%FF%FE"), "x"), "\u{fffd}\u{fffd}");
    }
}
