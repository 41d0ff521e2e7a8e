//! Positions as the protocol counts them (line and UTF-16 code unit) to and from byte
//! offsets.

use lsp_types::{Position, Range};

/// The position of byte `offset` in `text` (clamped to the text, and back to a char
/// boundary).
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |idx| idx + 1);
    Position {
        line: before.matches('\n').count() as u32,
        character: before[line_start..].encode_utf16().count() as u32,
    }
}

/// The range of bytes `start..end` of `text`.
pub fn range(text: &str, start: usize, end: usize) -> Range {
    Range {
        start: position(text, start),
        end: position(text, end.max(start)),
    }
}

/// The byte offset of a position (past the line's end: its end; past the last line: the
/// text's end).
pub fn offset(text: &str, position: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..position.line {
        match text[line_start..].find('\n') {
            Some(idx) => line_start += idx + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |idx| line_start + idx);
    let mut units = 0u32;
    for (idx, ch) in text[line_start..line_end].char_indices() {
        if units >= position.character {
            return line_start + idx;
        }
        units += ch.len_utf16() as u32;
    }
    line_end
}

/// Where `offset` of `new` was in `old`, taking the texts to differ in one region (what
/// an edit does): before it unchanged, after it shifted, inside it at the region's start.
pub fn offset_before_edit(old: &str, new: &str, offset: usize) -> usize {
    let prefix = old
        .bytes()
        .zip(new.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old
        .bytes()
        .rev()
        .zip(new.bytes().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(old.len().min(new.len()) - prefix);
    if offset <= prefix {
        offset
    } else if offset >= new.len() - suffix {
        offset + old.len() - new.len()
    } else {
        prefix
    }
}

/// The identifier (letters, digits, `_`) around `offset`, with its byte range.
pub fn word_at(text: &str, offset: usize) -> Option<(usize, usize)> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let offset = offset.min(text.len());
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(idx, _)| idx);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_word(*c))
        .map_or(text.len(), |(idx, _)| offset + idx);
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "a = \"é😀\"\nbc\n";
        let end_of_emoji = text.find('😀').unwrap() + '😀'.len_utf8();
        let pos = position(text, end_of_emoji);
        assert_eq!((pos.line, pos.character), (0, 8));
        assert_eq!(offset(text, pos), end_of_emoji);
        assert_eq!(offset(text, Position::new(1, 1)), text.find("c").unwrap());
        assert_eq!(offset(text, Position::new(1, 99)), text.len() - 1);
        assert_eq!(offset(text, Position::new(9, 0)), text.len());
        // Inside a character: back to its start.
        assert_eq!(position(text, text.find('é').unwrap() + 1).character, 5);
    }

    #[test]
    fn offsets_map_back_across_one_edit() {
        let old = "a {\n  b\n}\n";
        let new = "a {\n  b\n  c.\n}\n";
        let typed = new.find("c.").unwrap() + 2;
        assert_eq!(offset_before_edit(old, new, typed), old.find('}').unwrap());
        assert_eq!(offset_before_edit(old, new, 2), 2);
        assert_eq!(offset_before_edit(old, new, new.len()), old.len());
        assert_eq!(offset_before_edit(new, old, old.len() - 1), new.len() - 1);
    }

    #[test]
    fn a_word_is_found_from_either_edge() {
        let text = "map canonical = orders -> Order";
        let at = text.find("orders").unwrap();
        assert_eq!(word_at(text, at), Some((at, at + 6)));
        assert_eq!(word_at(text, at + 6), Some((at, at + 6)));
        assert_eq!(word_at(text, text.find('=').unwrap()), None);
    }
}
