//! Approximations of Go's `unicode` predicates using what `core` offers.
//!
//! Rust has no general-category tables in `std`, so the few categories where Rust's
//! properties and Go's predicates disagree are excluded by explicit ranges.

/// Go's `unicode.IsLetter` (categories L*).
pub(crate) fn is_go_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.is_alphabetic() && !is_letter_number(c) && !c.is_numeric()
}

/// Letter numbers (Nl) are alphabetic in Rust but not letters in Go.
fn is_letter_number(c: char) -> bool {
    matches!(c as u32,
        0x16EE..=0x16F0 | 0x2160..=0x2188 | 0x3007 | 0x3021..=0x3029 | 0x3038..=0x303A
        | 0xA6E6..=0xA6EF | 0x10140..=0x10174 | 0x10341 | 0x1034A | 0x103D1..=0x103D5
        | 0x12400..=0x1246E)
}

/// Go's `unicode.IsDigit` (category Nd).
pub(crate) fn is_go_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.is_numeric() && !c.is_alphabetic() && !is_other_number(c)
}

/// Common "other number" (No) ranges, which Rust counts as numeric but Go not as digits.
fn is_other_number(c: char) -> bool {
    matches!(c as u32,
        0xB2 | 0xB3 | 0xB9 | 0xBC..=0xBE | 0x9F4..=0x9F9 | 0xB72..=0xB77 | 0xBF0..=0xBF2
        | 0xC78..=0xC7E | 0xD58..=0xD5E | 0xD70..=0xD78 | 0xF2A..=0xF33 | 0x1369..=0x137C
        | 0x17F0..=0x17F9 | 0x19DA | 0x2070..=0x209F | 0x2150..=0x218F | 0x2460..=0x24FF
        | 0x2776..=0x2793 | 0x2CFD | 0x3192..=0x3195 | 0x3220..=0x3229 | 0x3248..=0x324F
        | 0x3251..=0x325F | 0x3280..=0x3289 | 0x32B1..=0x32BF | 0xA830..=0xA835
        | 0x10107..=0x10133 | 0x10175..=0x10178 | 0x1F100..=0x1F10C)
}

/// Go's `unicode.IsPrint` / `strconv.IsPrint`: graphic characters plus ASCII space.
pub(crate) fn is_go_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(u,
        // Format characters (Cf).
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        | 0xE0001 | 0xE0020..=0xE007F
        // Private use (Co) and noncharacters (Cn).
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF)
        && (u & 0xFFFE) != 0xFFFE
}

/// Go's `unicode.IsSpace`, which matches Rust's White_Space property.
pub(crate) fn is_go_space(c: char) -> bool {
    c.is_whitespace()
}
