//! Tokeniser for Go `text/template` source, mirroring Go's `text/template/parse` lexer.
//!
//! The whole input is lexed up front into a vector; the stream ends with either an
//! `Eof` item or a single `Error` item (Go's lexer also stops at its first error).

use super::unicode::{is_go_digit, is_go_letter};

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords (Go orders them after `itemKeyword`).
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    pub(crate) fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub typ: ItemType,
    pub pos: usize,
    pub val: String,
    pub line: usize,
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                let chars: Vec<char> = self.val.chars().collect();
                if chars.len() > 10 {
                    let head: String = chars[..10].iter().collect();
                    write!(
                        f,
                        "{}...",
                        super::strconv::quote_str(head.as_bytes(), false)
                    )
                } else {
                    f.write_str(&super::strconv::quote_str(self.val.as_bytes(), false))
                }
            }
        }
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\r' | '\n'))
}

fn is_alnum(c: Option<char>) -> bool {
    match c {
        Some(c) => c == '_' || is_go_letter(c) || is_go_digit(c),
        None => false,
    }
}

fn has_left_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && s[0] == b'-' && matches!(s[1], b' ' | b'\t' | b'\r' | b'\n')
}

fn has_right_trim_marker(s: &[u8]) -> bool {
    s.len() >= 2 && matches!(s[0], b' ' | b'\t' | b'\r' | b'\n') && s[1] == b'-'
}

fn is_ascii_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Which state the lexer resumes in; Go models this as a chain of state functions.
#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Quote,
    RawQuote,
    Variable,
    Field,
    Char,
    Number,
    Identifier,
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    at_eof: bool,
    paren_depth: usize,
    items: Vec<Item>,
    done: bool,
    line_starts: Vec<usize>,
    /// Deepest parenthesis nesting seen; sizes the parser's stack.
    pub max_paren: usize,
}

/// Lex all of `input`. The result always ends with an `Eof` or `Error` item.
pub(crate) fn lex(input: &str) -> (Vec<Item>, usize) {
    let mut line_starts = vec![0];
    for (i, b) in input.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(i + 1);
        }
    }
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        at_eof: false,
        paren_depth: 0,
        items: Vec::new(),
        done: false,
        line_starts,
        max_paren: 0,
    };
    let mut state = State::Text;
    while !l.done {
        state = l.step(state);
    }
    let max = l.max_paren;
    (l.items, max)
}

impl<'a> Lexer<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.input.as_bytes()
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn line_of(&self, pos: usize) -> usize {
        match self.line_starts.binary_search(&pos) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn next(&mut self) -> Option<char> {
        if self.pos >= self.input.len() {
            self.at_eof = true;
            return None;
        }
        let c = self.input[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn backup(&mut self) {
        if !self.at_eof
            && let Some(c) = self.input[..self.pos].chars().next_back()
        {
            self.pos -= c.len_utf8();
        }
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.input[self.start..self.pos].to_string();
        self.emit_item(typ, self.start, val);
        self.start = self.pos;
    }

    fn emit_item(&mut self, typ: ItemType, pos: usize, val: String) {
        let line = self.line_of(pos);
        if typ == ItemType::Eof || typ == ItemType::Error {
            self.done = true;
        }
        self.items.push(Item {
            typ,
            pos,
            val,
            line,
        });
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        loop {
            match self.next() {
                Some(c) if valid.contains(c) => {}
                _ => break,
            }
        }
        self.backup();
    }

    fn errorf(&mut self, msg: String) -> State {
        let pos = self.start;
        self.emit_item(ItemType::Error, pos, msg);
        State::Text
    }

    fn at_right_delim(&self) -> (bool, bool) {
        let rest = &self.bytes()[self.pos..];
        if has_right_trim_marker(rest) && rest[2..].starts_with(RIGHT_DELIM.as_bytes()) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM.as_bytes()) {
            return (true, false);
        }
        (false, false)
    }

    fn at_terminator(&mut self) -> bool {
        let r = self.peek();
        if is_space(r) {
            return true;
        }
        match r {
            None | Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn step(&mut self, state: State) -> State {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => self.lex_right_delim(),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Quote => self.lex_quote(),
            State::RawQuote => self.lex_raw_quote(),
            State::Variable => self.lex_variable(),
            State::Field => self.lex_field_or_variable(ItemType::Field),
            State::Char => self.lex_char(),
            State::Number => self.lex_number(),
            State::Identifier => self.lex_identifier(),
        }
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let mut trim = 0;
                if has_left_trim_marker(&self.bytes()[delim_end..]) {
                    let text = &self.bytes()[self.start..self.pos];
                    trim = text
                        .iter()
                        .rev()
                        .take_while(|b| is_ascii_space(**b))
                        .count();
                }
                self.pos -= trim;
                let start = self.start;
                let val = self.input[start..self.pos].to_string();
                self.pos += trim;
                self.ignore();
                if !val.is_empty() {
                    self.emit_item(ItemType::Text, start, val);
                }
            }
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.emit(ItemType::Text);
            return State::Text;
        }
        let pos = self.pos;
        self.emit_item(ItemType::Eof, pos, "EOF".to_string());
        State::Text
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(&self.bytes()[self.pos..]);
        let after = if trim { 2 } else { 0 };
        if self.bytes()[self.pos + after..].starts_with(LEFT_COMMENT.as_bytes()) {
            self.pos += after;
            self.ignore();
            return State::Comment;
        }
        let start = self.start;
        self.emit_item(ItemType::LeftDelim, start, LEFT_DELIM.to_string());
        self.pos += after;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.rest().find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += self.bytes()[self.pos..]
                .iter()
                .take_while(|b| is_ascii_space(**b))
                .count();
        }
        self.ignore();
        State::Text
    }

    fn lex_right_delim(&mut self) -> State {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemType::RightDelim);
        if trim {
            self.pos += self.bytes()[self.pos..]
                .iter()
                .take_while(|b| is_ascii_space(**b))
                .count();
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let r = self.next();
        match r {
            None => self.errorf("unclosed action".into()),
            Some(' ' | '\t' | '\r' | '\n') => {
                self.backup();
                State::Space
            }
            Some('=') => {
                self.emit(ItemType::Assign);
                State::InsideAction
            }
            Some(':') => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".into());
                }
                self.emit(ItemType::Declare);
                State::InsideAction
            }
            Some('|') => {
                self.emit(ItemType::Pipe);
                State::InsideAction
            }
            Some('"') => State::Quote,
            Some('`') => State::RawQuote,
            Some('$') => State::Variable,
            Some('\'') => State::Char,
            Some('.') => {
                if let Some(&b) = self.bytes().get(self.pos)
                    && !b.is_ascii_digit()
                {
                    return State::Field;
                }
                self.backup();
                State::Number
            }
            Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                self.backup();
                State::Number
            }
            Some(c) if is_alnum(Some(c)) => {
                self.backup();
                State::Identifier
            }
            Some('(') => {
                self.paren_depth += 1;
                self.max_paren = self.max_paren.max(self.paren_depth);
                self.emit(ItemType::LeftParen);
                State::InsideAction
            }
            Some(')') => {
                if self.paren_depth == 0 {
                    return self.errorf("unexpected right paren".into());
                }
                self.paren_depth -= 1;
                self.emit(ItemType::RightParen);
                State::InsideAction
            }
            Some(c) if c.is_ascii() && !c.is_ascii_control() => {
                self.emit(ItemType::Char);
                State::InsideAction
            }
            Some(c) => self.errorf(format!(
                "unrecognized character in action: {}",
                super::strconv::format_unicode_sharp(c)
            )),
        }
    }

    fn lex_space(&mut self) -> State {
        let mut num = 0;
        while is_space(self.peek()) {
            self.next();
            num += 1;
        }
        let b = self.bytes();
        if has_right_trim_marker(&b[self.pos - 1..])
            && b[self.pos + 1..].starts_with(RIGHT_DELIM.as_bytes())
        {
            self.backup();
            if num == 1 {
                return State::RightDelim;
            }
        }
        self.emit(ItemType::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        loop {
            let r = self.next();
            if is_alnum(r) {
                continue;
            }
            self.backup();
            let word = &self.input[self.start..self.pos];
            if !self.at_terminator() {
                return self.errorf(format!("bad character {}", format_rune_opt(r)));
            }
            let typ = match keyword(word) {
                Some(k) if k != ItemType::Dot => k,
                _ if word.starts_with('.') => ItemType::Field,
                _ if word == "true" || word == "false" => ItemType::Bool,
                _ => ItemType::Identifier,
            };
            self.emit(typ);
            return State::InsideAction;
        }
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(ItemType::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(ItemType::Variable)
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> State {
        if self.at_terminator() {
            self.emit(if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            });
            return State::InsideAction;
        }
        let mut r;
        loop {
            r = self.next();
            if !is_alnum(r) {
                self.backup();
                break;
            }
        }
        if !self.at_terminator() {
            return self.errorf(format!("bad character {}", format_rune_opt(r)));
        }
        self.emit(typ);
        State::InsideAction
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    None | Some('\n') => {
                        return self.errorf("unterminated character constant".into());
                    }
                    _ => {}
                },
                None | Some('\n') => return self.errorf("unterminated character constant".into()),
                Some('\'') => break,
                _ => {}
            }
        }
        self.emit(ItemType::CharConstant);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.errorf(format!(
                "bad number syntax: {}",
                super::strconv::quote_str(text.as_bytes(), false)
            ));
        }
        if let Some('+' | '-') = self.peek() {
            if !self.scan_number() || self.bytes()[self.pos - 1] != b'i' {
                let text = self.input[self.start..self.pos].to_string();
                return self.errorf(format!(
                    "bad number syntax: {}",
                    super::strconv::quote_str(text.as_bytes(), false)
                ));
            }
            self.emit(ItemType::Complex);
            return State::InsideAction;
        }
        self.emit(ItemType::Number);
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if is_alnum(self.peek()) {
            self.next();
            return false;
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                    _ => {}
                },
                None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                Some('"') => break,
                _ => {}
            }
        }
        self.emit(ItemType::String);
        State::InsideAction
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".into()),
                Some('`') => break,
                _ => {}
            }
        }
        self.emit(ItemType::RawString);
        State::InsideAction
    }
}

fn format_rune_opt(r: Option<char>) -> String {
    match r {
        Some(c) => super::strconv::format_unicode_sharp(c),
        None => "U+FFFFFFFFFFFFFFFF".to_string(),
    }
}
