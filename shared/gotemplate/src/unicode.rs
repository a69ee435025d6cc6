//! Go's `unicode` predicates, from range tables generated with Go itself so that
//! identifiers, quoting and escaping classify every code point exactly as Go does.

use super::unicode_tables::{DIGIT, LETTER, PRINT, SPACE};

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Go's `unicode.IsLetter`.
pub(crate) fn is_go_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_table(LETTER, c)
}

/// Go's `unicode.IsDigit`.
pub(crate) fn is_go_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_table(DIGIT, c)
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and ASCII space.
pub(crate) fn is_go_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    in_table(PRINT, c)
}

/// Go's `unicode.IsSpace`.
pub(crate) fn is_go_space(c: char) -> bool {
    in_table(SPACE, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_go() {
        assert!(
            is_go_letter('é')
                && is_go_letter('日')
                && !is_go_letter('\u{301}')
                && !is_go_letter('Ⅷ')
        );
        assert!(is_go_digit('٣') && !is_go_digit('²') && !is_go_digit('a'));
        assert!(
            is_go_print('é')
                && !is_go_print('\u{a0}')
                && !is_go_print('\u{ad}')
                && !is_go_print('\u{378}')
        );
        assert!(is_go_space('\u{85}') && is_go_space('\u{3000}') && !is_go_space('\u{200b}'));
    }
}
