//! Parse tree. Nodes live in flat arenas addressed by index, so dropping or cloning a
//! deeply nested tree never recurses.

pub(crate) type NodeId = u32;
pub(crate) type ListId = u32;
pub(crate) type PipeId = u32;

#[derive(Clone, Debug, Default)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub lists: Vec<Vec<NodeId>>,
    pub pipes: Vec<Pipe>,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Text {
        pos: usize,
        text: Vec<u8>,
    },
    Action {
        pos: usize,
        pipe: PipeId,
    },
    If(Control),
    Range(Control),
    With(Control),
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
    /// `{{template}}` or the call half of `{{block}}`; always forbidden.
    Template {
        pos: usize,
        keyword: &'static str,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Control {
    pub pos: usize,
    pub pipe: PipeId,
    pub list: ListId,
    pub else_list: Option<ListId>,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A numeric constant already resolved the way Go's `idealConstant` will treat it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
    Complex(f64, f64),
    /// Fits only in uint64: an exec-time "overflows int" error.
    Overflow,
}

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    /// A term followed by fields; the term is an identifier or a parenthesised pipeline.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number {
        pos: usize,
        text: String,
        val: Number,
    },
    String {
        pos: usize,
        quoted: String,
        val: Vec<u8>,
    },
    Pipe {
        pos: usize,
        pipe: PipeId,
    },
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::Number { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Pipe { pos, .. } => *pos,
        }
    }
}

impl Tree {
    /// Go's `Node.String()` for an argument, used in error context.
    pub fn arg_string(&self, a: &Arg, out: &mut String) {
        match a {
            Arg::Field { idents, .. } => {
                for i in idents {
                    out.push('.');
                    out.push_str(i);
                }
            }
            Arg::Variable { idents, .. } => out.push_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                if let Arg::Pipe { .. } = **node {
                    self.arg_string(node, out);
                } else {
                    self.arg_string(node, out);
                }
                for f in fields {
                    out.push('.');
                    out.push_str(f);
                }
            }
            Arg::Identifier { name, .. } => out.push_str(name),
            Arg::Dot { .. } => out.push('.'),
            Arg::Nil { .. } => out.push_str("nil"),
            Arg::Bool { val, .. } => out.push_str(if *val { "true" } else { "false" }),
            Arg::Number { text, .. } => out.push_str(text),
            Arg::String { quoted, .. } => out.push_str(quoted),
            Arg::Pipe { pipe, .. } => {
                out.push('(');
                self.pipe_string(*pipe, out);
                out.push(')');
            }
        }
    }

    pub fn cmd_string(&self, c: &Cmd, out: &mut String) {
        for (i, a) in c.args.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            self.arg_string(a, out);
        }
    }

    pub fn pipe_string(&self, p: PipeId, out: &mut String) {
        let Some(pipe) = self.pipes.get(p as usize) else {
            return;
        };
        if !pipe.decl.is_empty() {
            out.push_str(&pipe.decl.join(", "));
            out.push_str(if pipe.is_assign { " = " } else { " := " });
        }
        for (i, c) in pipe.cmds.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            self.cmd_string(c, out);
        }
    }
}
