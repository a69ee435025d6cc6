//! Recursive-descent parser mirroring Go's `text/template/parse` (same grammar, same
//! places for errors). Recursion depth is bounded: parentheses by Go's own limit and
//! block nesting by [`MAX_NESTING`]; the caller runs deep inputs on a large stack.

use super::ast::{Arg, Cmd, Control, ListId, Node, NodeId, Number, Pipe, PipeId, Tree};
use super::lexer::{Item, ItemType};
use super::strconv::{parse_float, parse_int0, parse_uint0, unquote, unquote_char};
use super::unicode::is_go_space;

/// Go's `maxStackDepth` for nested parenthesised pipelines.
pub(crate) const MAX_PAREN_DEPTH: usize = 10_000;
/// Nesting limit for if/range/with/else-if chains (Go has none; this keeps the stack bounded).
pub(crate) const MAX_NESTING: usize = 10_000;

const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// A parse failure: message plus the byte offset it is reported at.
#[derive(Debug)]
pub(crate) struct ParseFailure {
    pub pos: usize,
    pub message: String,
}

/// The first define/template/block seen, in source order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForbiddenAt {
    pub keyword: &'static str,
    pub pos: usize,
}

pub(crate) struct Parsed {
    pub tree: Tree,
    pub root: ListId,
    pub forbidden: Option<ForbiddenAt>,
}

enum Step {
    Node(NodeId),
    End,
    Else,
}

struct Parser<'a> {
    name: &'a str,
    items: &'a [Item],
    idx: usize,
    max_fetched: usize,
    tree: Tree,
    vars: Vec<String>,
    /// How many entries of `vars` have each name, so lookups stay O(1) on huge inputs.
    var_counts: std::collections::HashMap<String, usize>,
    range_depth: usize,
    paren_depth: usize,
    nesting: usize,
    action_line: usize,
    /// Go's tree set, in order of definition.
    defined: Vec<Defined>,
}

/// One entry of Go's tree set: a named template made by `define` or `block`.
struct Defined {
    name: Vec<u8>,
    empty: bool,
    body: ListId,
    /// Where the `define`/`block` keyword that (last) set this entry is.
    keyword: &'static str,
    pos: usize,
}

type PResult<T> = Result<T, ParseFailure>;

pub(crate) fn parse(name: &str, items: &[Item]) -> PResult<Parsed> {
    let mut p = Parser {
        name,
        items,
        idx: 0,
        max_fetched: 0,
        tree: Tree::default(),
        vars: vec!["$".to_string()],
        var_counts: std::collections::HashMap::from([("$".to_string(), 1)]),
        range_depth: 0,
        paren_depth: 0,
        nesting: 0,
        action_line: 0,
        defined: Vec::new(),
    };
    let main = p.parse_top()?;
    // Go adds the main tree last: it replaces an empty definition of the same name, yields
    // to a non-empty one when itself empty, and conflicts with it otherwise.
    let main_empty = p.list_is_empty(main);
    let mut root = main;
    if let Some(d) = p.defined.iter().find(|d| d.name == name.as_bytes())
        && !d.empty
    {
        if !main_empty {
            let quoted = super::strconv::quote_str(name.as_bytes(), false);
            return p.err(format!(
                "template: multiple definition of template {quoted}"
            ));
        }
        root = d.body;
    }
    let forbidden = p.forbidden(root);
    Ok(Parsed {
        tree: p.tree,
        root,
        forbidden,
    })
}

fn contains_any(s: &str, set: &str) -> bool {
    s.chars().any(|c| set.contains(c))
}

fn is_hex_int(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') && !contains_any(s, "pP")
}

/// Length of the first number in a complex literal, as the lexer's `scanNumber` saw it.
fn scan_number_len(s: &[u8]) -> usize {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut hex = false;
    let mut dec = true;
    if s.get(i) == Some(&b'0') {
        i += 1;
        match s.get(i).map(|c| c | 0x20) {
            Some(b'x') => {
                hex = true;
                dec = false;
                i += 1;
            }
            Some(b'o' | b'b') => {
                dec = false;
                i += 1;
            }
            _ => {}
        }
    }
    let digit = |c: u8| c.is_ascii_hexdigit() || c == b'_';
    while i < s.len() && digit(s[i]) && (hex || s[i].is_ascii_digit() || s[i] == b'_') {
        i += 1;
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        while i < s.len() && digit(s[i]) && (hex || s[i].is_ascii_digit() || s[i] == b'_') {
            i += 1;
        }
    }
    if (dec && matches!(s.get(i), Some(b'e' | b'E')))
        || (hex && matches!(s.get(i), Some(b'p' | b'P')))
    {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'_') {
            i += 1;
        }
    }
    if s.get(i) == Some(&b'i') {
        i += 1;
    }
    i
}

/// Go's `newNumber` followed by what `idealConstant` will make of it.
fn number(text: &str, typ: ItemType) -> Result<Number, String> {
    match typ {
        ItemType::CharConstant => {
            let b = text.as_bytes();
            let (r, _, tail) =
                unquote_char(&b[1..], b'\'').ok_or_else(|| "invalid syntax".to_string())?;
            if tail != b"'" {
                return Err(format!("malformed character constant: {text}"));
            }
            return Ok(Number::Int(r as i64));
        }
        ItemType::Complex => {
            let split = scan_number_len(text.as_bytes());
            let (re, im) = text.split_at(split);
            let im = im.strip_suffix('i').unwrap_or(im);
            let bad = || "syntax error scanning complex number".to_string();
            let re = parse_float(re).ok_or_else(bad)?;
            let im = parse_float(im).ok_or_else(bad)?;
            return Ok(Number::Complex(re, im));
        }
        _ => {}
    }
    if let Some(head) = text.strip_suffix('i')
        && let Some(f) = parse_float(head)
    {
        return Ok(Number::Complex(0.0, f));
    }
    let u = parse_uint0(text);
    let i = parse_int0(text);
    let is_int = i.is_some();
    let is_uint = u.is_some() || i == Some(0);
    if is_int || is_uint {
        let as_float = match (i, u) {
            (Some(i), _) => i as f64,
            (None, Some(u)) => u as f64,
            _ => 0.0,
        };
        if contains_any(text, ".eEpP") && !is_hex_int(text) {
            return Ok(Number::Float(as_float));
        }
        return Ok(match i {
            Some(i) => Number::Int(i),
            None => Number::Overflow,
        });
    }
    match parse_float(text) {
        Some(f) => {
            if !contains_any(text, ".eEpP") {
                return Err(format!(
                    "integer overflow: {}",
                    super::strconv::quote_str(text.as_bytes(), false)
                ));
            }
            Ok(Number::Float(f))
        }
        None => Err(format!(
            "illegal number syntax: {}",
            super::strconv::quote_str(text.as_bytes(), false)
        )),
    }
}

impl<'a> Parser<'a> {
    fn item(&self, i: usize) -> &'a Item {
        let items: &'a [Item] = self.items;
        let last = items.len().saturating_sub(1);
        &items[i.min(last)]
    }

    fn next(&mut self) -> &'a Item {
        let it = self.item(self.idx);
        self.max_fetched = self
            .max_fetched
            .max(self.idx.min(self.items.len().saturating_sub(1)));
        if self.idx < self.items.len() - 1 {
            self.idx += 1;
        } else {
            // Stay on the final EOF/error item, but remember we consumed it once.
            self.idx = self.items.len();
        }
        it
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> &'a Item {
        let it = self.next();
        self.backup();
        it
    }

    fn next_non_space(&mut self) -> &'a Item {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> &'a Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn err<T>(&self, message: String) -> PResult<T> {
        let pos = self.item(self.max_fetched).pos;
        Err(ParseFailure { pos, message })
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return Err(ParseFailure {
                pos: token.pos,
                message: format!("{token}{extra}"),
            });
        }
        self.err(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, typ: ItemType, context: &str) -> PResult<&'a Item> {
        let t = self.next_non_space();
        if t.typ != typ {
            return self.unexpected(t, context);
        }
        Ok(t)
    }

    fn push_var(&mut self, name: &str) {
        self.vars.push(name.to_string());
        *self.var_counts.entry(name.to_string()).or_insert(0) += 1;
    }

    fn truncate_vars(&mut self, mark: usize) {
        while self.vars.len() > mark {
            if let Some(v) = self.vars.pop()
                && let Some(c) = self.var_counts.get_mut(&v)
            {
                *c -= 1;
            }
        }
    }

    fn new_list(&mut self) -> ListId {
        self.tree.lists.push(Vec::new());
        (self.tree.lists.len() - 1) as ListId
    }

    fn push_node(&mut self, n: Node) -> NodeId {
        self.tree.nodes.push(n);
        (self.tree.nodes.len() - 1) as NodeId
    }

    fn append(&mut self, list: ListId, n: NodeId) {
        if let Some(l) = self.tree.lists.get_mut(list as usize) {
            l.push(n);
        }
    }

    /// Forbidden when the source defines any template (even one named like the main template,
    /// which in Go would silently replace its body: the user docs forbid every `define`), or
    /// when the tree that will run holds a `{{template}}` (or `{{block}}`) call.
    /// Reports the earliest offending keyword.
    fn forbidden(&self, root: ListId) -> Option<ForbiddenAt> {
        let mut found: Option<ForbiddenAt> = None;
        let mut consider = |f: ForbiddenAt| {
            if found.is_none_or(|g| f.pos < g.pos) {
                found = Some(f);
            }
        };
        for d in &self.defined {
            consider(ForbiddenAt {
                keyword: d.keyword,
                pos: d.pos,
            });
        }
        // Iterative walk: the tree may be nested thousands of levels deep.
        let mut lists = vec![root];
        while let Some(l) = lists.pop() {
            for &n in &self.tree.lists[l as usize] {
                match &self.tree.nodes[n as usize] {
                    Node::Template { pos, keyword } => consider(ForbiddenAt { keyword, pos: *pos }),
                    Node::If(c) | Node::Range(c) | Node::With(c) => {
                        lists.push(c.list);
                        lists.extend(c.else_list);
                    }
                    _ => {}
                }
            }
        }
        found
    }

    /// Go's `IsEmptyTree` on a list.
    fn list_is_empty(&self, list: ListId) -> bool {
        self.tree.lists[list as usize]
            .iter()
            .all(|&n| match &self.tree.nodes[n as usize] {
                Node::Text { text, .. } => String::from_utf8_lossy(text).chars().all(is_go_space),
                _ => false,
            })
    }

    /// Go's `Tree.add`: a second non-empty definition of a name is an error.
    fn add_tree(&mut self, def: Defined) -> PResult<()> {
        if let Some(entry) = self.defined.iter_mut().find(|d| d.name == def.name) {
            if entry.empty {
                *entry = def;
                return Ok(());
            }
            let (name, empty) = (def.name, def.empty);
            if !empty {
                let quoted = super::strconv::quote_str(&name, false);
                return self.err(format!(
                    "template: multiple definition of template {quoted}"
                ));
            }
            return Ok(());
        }
        self.defined.push(def);
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<ListId> {
        let root = self.new_list();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim_idx = self.idx;
                self.next();
                let t = self.next_non_space();
                if t.typ == ItemType::Define {
                    self.parse_definition(t.pos)?;
                    continue;
                }
                self.idx = delim_idx;
            }
            match self.text_or_action()? {
                Step::End => return self.err("unexpected {{end}}".into()),
                Step::Else => return self.err("unexpected {{else}}".into()),
                Step::Node(n) => self.append(root, n),
            }
        }
        Ok(root)
    }

    /// Runs `f` with the fresh per-tree state Go gives a define/block body.
    fn in_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let counts = std::mem::replace(
            &mut self.var_counts,
            std::collections::HashMap::from([("$".to_string(), 1)]),
        );
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let paren_depth = std::mem::replace(&mut self.paren_depth, 0);
        let r = f(self);
        self.vars = vars;
        self.var_counts = counts;
        self.range_depth = range_depth;
        self.paren_depth = paren_depth;
        r
    }

    fn parse_definition(&mut self, pos: usize) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name = self.next_non_space();
        if name.typ != ItemType::String && name.typ != ItemType::RawString {
            return self.unexpected(name, CONTEXT);
        }
        let Some(tname) = unquote(&name.val) else {
            return self.err("invalid syntax".into());
        };
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let (list, end) = self.in_new_tree(|p| p.item_list())?;
        match end {
            Step::End => {}
            Step::Else => return self.err(format!("unexpected {{{{else}}}} in {CONTEXT}")),
            Step::Node(_) => return self.err(format!("unexpected node in {CONTEXT}")),
        }
        let empty = self.list_is_empty(list);
        self.add_tree(Defined {
            name: tname,
            empty,
            body: list,
            keyword: "define",
            pos,
        })
    }

    fn item_list(&mut self) -> PResult<(ListId, Step)> {
        let list = self.new_list();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Step::Node(n) => self.append(list, n),
                other => return Ok((list, other)),
            }
        }
        self.err("unexpected EOF".into())
    }

    fn text_or_action(&mut self) -> PResult<Step> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => {
                let n = self.push_node(Node::Text {
                    pos: token.pos,
                    text: token.val.as_bytes().to_vec(),
                });
                Ok(Step::Node(n))
            }
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Step> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control(token.pos).map(Step::Node),
            ItemType::Break => return self.loop_control(token.pos, true).map(Step::Node),
            ItemType::Continue => return self.loop_control(token.pos, false).map(Step::Node),
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Step::End);
            }
            ItemType::If => return self.control("if").map(Step::Node),
            ItemType::Range => return self.control("range").map(Step::Node),
            ItemType::Template => return self.template_control(token.pos).map(Step::Node),
            ItemType::With => return self.control("with").map(Step::Node),
            _ => {}
        }
        self.backup();
        let pos = self.peek().pos;
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Step::Node(self.push_node(Node::Action { pos, pipe })))
    }

    fn loop_control(&mut self, pos: usize, is_break: bool) -> PResult<NodeId> {
        let word = if is_break { "break" } else { "continue" };
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return self.unexpected(token, &format!("{{{{{word}}}}}"));
        }
        if self.range_depth == 0 {
            return self.err(format!("{{{{{word}}}}} outside {{{{range}}}}"));
        }
        Ok(self.push_node(if is_break {
            Node::Break { pos }
        } else {
            Node::Continue { pos }
        }))
    }

    fn else_control(&mut self) -> PResult<Step> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Step::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Step::Else)
    }

    fn control(&mut self, context: &'static str) -> PResult<NodeId> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(format!("max nesting depth exceeded ({MAX_NESTING})"));
        }
        let mark = self.vars.len();
        let r = self.parse_control(context);
        self.truncate_vars(mark);
        self.nesting -= 1;
        r
    }

    /// Go's `parseControl`. An `{{else if}}` / `{{else with}}` chain is parsed in a loop
    /// rather than by recursion (Go recurses), so long chains cost no stack; the result is
    /// the same nested tree, and the chain's variables stay in scope to its `{{end}}` as in Go.
    fn parse_control(&mut self, context: &'static str) -> PResult<NodeId> {
        // Each link: its pipeline and list; the last link may have a plain else list.
        let mut links: Vec<(usize, PipeId, ListId)> = Vec::new();
        let mut final_else = None;
        loop {
            let pipe = self.pipeline(context, ItemType::RightDelim)?;
            let pos = self.tree.pipes[pipe as usize].pos;
            if context == "range" {
                self.range_depth += 1;
            }
            let r = self.item_list();
            if context == "range" {
                self.range_depth -= 1;
            }
            let (list, next) = r?;
            links.push((pos, pipe, list));
            if let Step::Else = next {
                let peek = self.peek().typ;
                if (context == "if" && peek == ItemType::If)
                    || (context == "with" && peek == ItemType::With)
                {
                    self.next();
                    continue;
                }
                let (l, next) = self.item_list()?;
                match next {
                    Step::End => {}
                    Step::Else => return self.err("expected end; found {{else}}".into()),
                    Step::Node(_) => return self.err("expected end".into()),
                }
                final_else = Some(l);
            }
            break;
        }
        let mut else_list = final_else;
        let mut node = None;
        while let Some((pos, pipe, list)) = links.pop() {
            if let Some(inner) = node {
                let l = self.new_list();
                self.append(l, inner);
                else_list = Some(l);
            }
            let ctl = Control {
                pos,
                pipe,
                list,
                else_list: else_list.take(),
            };
            node = Some(self.push_node(match context {
                "if" => Node::If(ctl),
                "range" => Node::Range(ctl),
                _ => Node::With(ctl),
            }));
        }
        match node {
            Some(n) => Ok(n),
            None => self.err("internal error: empty control".into()),
        }
    }

    fn template_name(&mut self, token: &Item, context: &str) -> PResult<()> {
        match token.typ {
            ItemType::String | ItemType::RawString => match unquote(&token.val) {
                Some(_) => Ok(()),
                None => self.err("invalid syntax".into()),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn block_control(&mut self, pos: usize) -> PResult<NodeId> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        self.template_name(token, CONTEXT)?;
        let name = unquote(&token.val).unwrap_or_default();
        self.pipeline(CONTEXT, ItemType::RightDelim)?;
        let (list, end) = self.in_new_tree(|p| p.item_list())?;
        if let Step::Else = end {
            return self.err(format!("unexpected {{{{else}}}} in {CONTEXT}"));
        }
        let empty = self.list_is_empty(list);
        self.add_tree(Defined {
            name,
            empty,
            body: list,
            keyword: "block",
            pos,
        })?;
        Ok(self.push_node(Node::Template {
            pos,
            keyword: "block",
        }))
    }

    fn template_control(&mut self, pos: usize) -> PResult<NodeId> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        self.template_name(token, CONTEXT)?;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            self.pipeline(CONTEXT, ItemType::RightDelim)?;
        }
        Ok(self.push_node(Node::Template {
            pos,
            keyword: "template",
        }))
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<PipeId> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let v_idx = self.idx;
            self.next();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.push_var(&v.val);
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.push_var(&v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => return self.err("range can only initialize variables".into()),
                        }
                    }
                    return self.err(format!("too many declarations in {context}"));
                }
                _ => self.idx = v_idx,
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    break;
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(token, context),
            }
        }
        self.tree.pipes.push(pipe);
        Ok((self.tree.pipes.len() - 1) as PipeId)
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.err(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                Arg::Bool { .. }
                | Arg::Dot { .. }
                | Arg::Nil { .. }
                | Arg::Number { .. }
                | Arg::String { .. },
            ) = c.args.first()
            {
                return self.err(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Cmd {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.err("empty command".into());
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.push(f.val[1..].to_string());
        }
        Ok(Some(match node {
            Arg::Field { idents, .. } => {
                let mut idents = idents;
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { idents, .. } => {
                let mut idents = idents;
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number { .. }
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                let mut s = String::new();
                self.tree.arg_string(&node, &mut s);
                let q = super::strconv::quote_str(s.as_bytes(), false);
                return self.err(format!("unexpected . after term {q}"));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !is_builtin(&token.val) {
                    let q = super::strconv::quote_str(token.val.as_bytes(), false);
                    return self.err(format!("function {q} not defined"));
                }
                Arg::Identifier {
                    pos,
                    name: token.val.clone(),
                }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                if self.var_counts.get(&token.val).copied().unwrap_or(0) == 0 {
                    let q = super::strconv::quote_str(token.val.as_bytes(), false);
                    return self.err(format!("undefined variable {q}"));
                }
                Arg::Variable {
                    pos,
                    idents: vec![token.val.clone()],
                }
            }
            ItemType::Field => Arg::Field {
                pos,
                idents: token.val[1..].split('.').map(str::to_string).collect(),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                match number(&token.val, token.typ) {
                    Ok(val) => Arg::Number {
                        pos,
                        text: token.val.clone(),
                        val,
                    },
                    Err(e) => return self.err(e),
                }
            }
            ItemType::LeftParen => {
                if self.paren_depth >= MAX_PAREN_DEPTH {
                    return self.err("max expression depth exceeded".into());
                }
                self.paren_depth += 1;
                let r = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.paren_depth -= 1;
                Arg::Pipe { pos, pipe: r? }
            }
            ItemType::String | ItemType::RawString => match unquote(&token.val) {
                Some(val) => Arg::String {
                    pos,
                    quoted: token.val.clone(),
                    val,
                },
                None => return self.err("invalid syntax".into()),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}
