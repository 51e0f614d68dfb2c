//! Tabs that kubectl's YAML reader (go-yaml v2) accepts and saphyr does not: a tab right after
//! the `:` of a block mapping key (`name:<TAB>web`). go-yaml takes any blank there; saphyr wants
//! a space. Such a tab is read as a space, and each one is reported (a warning, in every
//! validation mode: the text loads as kubectl would load it, but other YAML tools may refuse it).
//!
//! Tabs go-yaml refuses too (indentation by tabs) stay parse errors. Only where saphyr reports
//! the colon error is a tab replaced, so tabs inside quoted or block scalars are never touched;
//! a tab is one character like a space, so every line and column stays what it was.

use std::borrow::Cow;

use saphyr_parser::Parser;

use super::Pos;

/// The message saphyr gives for `key:<TAB>value`.
const COLON_TAB: &str = "':' must be followed by a valid YAML whitespace";

/// More colon tabs than this in one text are left as errors (each one costs a parse).
const MAX_FIXES: usize = 256;

/// `text` with the tabs go-yaml reads as separating blanks after a mapping colon replaced by
/// spaces, and the position of each replaced tab.
pub(crate) fn go_yaml_tabs(text: &str) -> (Cow<'_, str>, Vec<Pos>) {
    let mut fixed: Cow<'_, str> = Cow::Borrowed(text);
    let mut at = Vec::new();
    if !text.contains(":\t") {
        return (fixed, at);
    }
    while at.len() < MAX_FIXES {
        let Some(pos) = first_colon_tab_error(&fixed) else {
            break;
        };
        let Some(offset) = tab_before(&fixed, pos) else {
            break;
        };
        let mut owned = fixed.into_owned();
        owned.replace_range(offset..offset + 1, " ");
        fixed = Cow::Owned(owned);
        at.push(pos_of(&fixed, offset));
    }
    (fixed, at)
}

/// Where parsing `text` stops with saphyr's colon error (the first non-blank after the blanks).
fn first_colon_tab_error(text: &str) -> Option<(usize, usize)> {
    let mut parser = Parser::new_from_str(text);
    while let Some(item) = parser.next_event() {
        if let Err(e) = item {
            if e.info() != COLON_TAB {
                return None;
            }
            let m = e.marker();
            return Some((m.line(), m.col()));
        }
    }
    None
}

/// The byte offset of the tab right after the `:` before 0-based column `col` of 1-based `line`.
fn tab_before(text: &str, (line, col): (usize, usize)) -> Option<usize> {
    let start = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum::<usize>();
    let line_text = text[start..].split('\n').next()?;
    let before: Vec<(usize, char)> = line_text.char_indices().take(col).collect();
    let mut i = before.len();
    while i > 0 && matches!(before[i - 1].1, ' ' | '\t') {
        i -= 1;
    }
    let colon = i.checked_sub(1)?;
    match (before.get(colon), before.get(colon + 1)) {
        (Some((_, ':')), Some((offset, '\t'))) => Some(start + offset),
        _ => None,
    }
}

/// The 1-based position of byte `offset`.
fn pos_of(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Pos {
        line,
        col: text[line_start..offset].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_after_a_colon_becomes_a_space_and_is_located() {
        let text = "a:\tb\nc:\n  d:\t\te\n";
        let (fixed, at) = go_yaml_tabs(text);
        assert_eq!(fixed, "a: b\nc:\n  d: \te\n");
        assert_eq!(at, [Pos { line: 1, col: 3 }, Pos { line: 3, col: 5 }]);
    }

    #[test]
    fn tabs_inside_quotes_and_indentation_tabs_are_left_alone() {
        let quoted = "a: \"x:\ty\"\n";
        assert_eq!(go_yaml_tabs(quoted), (Cow::Borrowed(quoted), vec![]));
        let indented = "a:\n\tb: c\n";
        assert_eq!(go_yaml_tabs(indented).1, vec![]);
    }
}
