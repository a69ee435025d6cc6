//! Tree-walking executor with Go's `text/template` semantics for `map[string]string`
//! data and `missingkey=zero`, plus step/iteration/output budgets.

use std::collections::{BTreeMap, HashMap};

use super::Limits;
use super::ast::{Arg, Cmd, Control, ListId, Node, NodeId, Number, PipeId, Tree};
use super::fmt::Printer;
use super::funcs;
use super::value::Value;

/// Where an exec error is reported, like Go's `state.node`.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Node(NodeId),
    Pipe(PipeId),
    Cmd(&'t Cmd),
    Arg(&'t Arg),
}

pub(crate) enum Failure {
    Exec { pos: Option<usize>, message: String },
    Limit { pos: Option<usize>, message: String },
}

enum Flow {
    Break,
    Continue,
    Fail(Failure),
}

impl From<Failure> for Flow {
    fn from(f: Failure) -> Self {
        Flow::Fail(f)
    }
}

type EResult<T> = Result<T, Failure>;

pub(crate) struct State<'t> {
    name: &'t str,
    tree: &'t Tree,
    data: &'t BTreeMap<String, String>,
    limits: &'t Limits,
    out: Vec<u8>,
    /// Go's variable stack.
    vars: Vec<(&'t str, Value)>,
    /// Stack positions of each variable name, innermost last: O(1) lookups however many
    /// variables a template declares.
    var_index: HashMap<&'t str, Vec<usize>>,
    at: At<'t>,
    iterations: u64,
    steps: u64,
}

/// The "final" value threaded through a pipeline (Go's `missingVal` when absent).
type Final = Option<Value>;

pub(crate) fn execute(
    name: &str,
    tree: &Tree,
    root: ListId,
    data: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Vec<u8>, Failure> {
    let mut s = State {
        name,
        tree,
        data,
        limits,
        out: Vec::new(),
        vars: vec![("$", Value::Map)],
        var_index: HashMap::from([("$", vec![0])]),
        at: At::None,
        iterations: 0,
        steps: 0,
    };
    match s.walk_list(&Value::Map, root) {
        Ok(()) => Ok(s.out),
        Err(Flow::Fail(f)) => Err(f),
        // The parser only allows break/continue inside range.
        Err(Flow::Break | Flow::Continue) => Ok(s.out),
    }
}

fn quote(s: &str) -> String {
    super::strconv::quote_str(s.as_bytes(), false)
}

impl<'t> State<'t> {
    fn at_pos(&self) -> Option<usize> {
        match self.at {
            At::None => None,
            At::Node(n) => Some(match &self.tree.nodes[n as usize] {
                Node::Action { pos, .. }
                | Node::Break { pos }
                | Node::Continue { pos }
                | Node::Template { pos, .. } => *pos,
                Node::If(c) | Node::Range(c) | Node::With(c) => c.pos,
                Node::Text { pos, .. } => *pos,
            }),
            At::Pipe(p) => Some(self.tree.pipes[p as usize].pos),
            At::Cmd(c) => Some(c.pos),
            At::Arg(a) => Some(a.pos()),
        }
    }

    fn context(&self) -> String {
        let mut s = String::new();
        match self.at {
            At::None => {}
            At::Node(n) => match &self.tree.nodes[n as usize] {
                Node::Action { pipe, .. } => {
                    s.push_str("{{");
                    self.tree.pipe_string(*pipe, &mut s);
                    s.push_str("}}");
                }
                Node::If(c) => self.control_string("if", c, &mut s),
                Node::Range(c) => self.control_string("range", c, &mut s),
                Node::With(c) => self.control_string("with", c, &mut s),
                Node::Break { .. } => s.push_str("{{break}}"),
                Node::Continue { .. } => s.push_str("{{continue}}"),
                _ => {}
            },
            At::Pipe(p) => self.tree.pipe_string(p, &mut s),
            At::Cmd(c) => self.tree.cmd_string(c, &mut s),
            At::Arg(a) => self.tree.arg_string(a, &mut s),
        }
        s
    }

    fn control_string(&self, word: &str, c: &Control, s: &mut String) {
        s.push_str("{{");
        s.push_str(word);
        s.push(' ');
        self.tree.pipe_string(c.pipe, s);
        s.push_str("}}");
    }

    fn fail(&self, msg: impl Into<String>) -> Failure {
        let msg = msg.into();
        match self.at {
            At::None => Failure::Exec {
                pos: None,
                message: msg,
            },
            _ => Failure::Exec {
                pos: self.at_pos(),
                message: format!(
                    "executing {} at <{}>: {}",
                    quote(self.name),
                    self.context(),
                    msg
                ),
            },
        }
    }

    fn limit(&self, msg: String) -> Failure {
        Failure::Limit {
            pos: self.at_pos(),
            message: msg,
        }
    }

    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(self.limit(format!(
                "execution step budget of {} exceeded",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    /// Charges work for a produced value and rejects values larger than any output could be.
    fn charge(&mut self, v: &Value) -> EResult<()> {
        if let Value::Str(s) = v {
            if s.len() > self.limits.max_output_bytes {
                return Err(self.limit(format!(
                    "value of {} bytes exceeds the output limit of {} bytes",
                    s.len(),
                    self.limits.max_output_bytes
                )));
            }
            // Building a string costs about as much per 8 bytes as a step does (measured on
            // padded printf), so long strings cannot stretch the step budget.
            self.steps += (s.len() / 8) as u64;
        }
        self.step()
    }

    fn write(&mut self, b: &[u8]) -> EResult<()> {
        if self.out.len() + b.len() > self.limits.max_output_bytes {
            return Err(self.limit(format!(
                "output exceeds the limit of {} bytes",
                self.limits.max_output_bytes
            )));
        }
        self.out.extend_from_slice(b);
        Ok(())
    }

    fn mark(&self) -> usize {
        self.vars.len()
    }

    fn pop(&mut self, mark: usize) {
        while self.vars.len() > mark {
            if let Some((name, _)) = self.vars.pop()
                && let Some(positions) = self.var_index.get_mut(name)
            {
                positions.pop();
            }
        }
    }

    fn push_var(&mut self, name: &'t str, v: Value) {
        self.var_index
            .entry(name)
            .or_default()
            .push(self.vars.len());
        self.vars.push((name, v));
    }

    /// Index of the innermost variable called `name`.
    fn find_var(&mut self, name: &str) -> EResult<usize> {
        match self.var_index.get(name).and_then(|p| p.last()) {
            Some(&i) => Ok(i),
            None => Err(self.fail(format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&mut self, name: &str) -> EResult<Value> {
        let i = self.find_var(name)?;
        Ok(self.vars[i].1.clone())
    }

    fn set_var(&mut self, name: &str, v: Value) -> EResult<()> {
        let i = self.find_var(name)?;
        self.vars[i].1 = v;
        Ok(())
    }

    fn set_top_var(&mut self, n: usize, v: Value) {
        let len = self.vars.len();
        if let Some(slot) = self.vars.get_mut(len.wrapping_sub(n)) {
            slot.1 = v;
        }
    }

    fn walk_list(&mut self, dot: &Value, list: ListId) -> Result<(), Flow> {
        let tree = self.tree;
        for &n in &tree.lists[list as usize] {
            self.walk(dot, n)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, id: NodeId) -> Result<(), Flow> {
        self.at = At::Node(id);
        self.step()?;
        let tree = self.tree;
        match &tree.nodes[id as usize] {
            Node::Text { text, .. } => self.write(text)?,
            Node::Action { pipe, .. } => {
                let v = self.eval_pipeline(dot, *pipe)?;
                if tree.pipes[*pipe as usize].decl.is_empty() {
                    self.at = At::Node(id);
                    self.print_value(&v)?;
                }
            }
            Node::Break { .. } => return Err(Flow::Break),
            Node::Continue { .. } => return Err(Flow::Continue),
            Node::If(c) => self.walk_if_or_with(false, dot, c)?,
            Node::With(c) => self.walk_if_or_with(true, dot, c)?,
            Node::Range(c) => self.walk_range(dot, id, c)?,
            Node::Template { keyword, .. } => {
                // Callers reject these before executing; refuse rather than guess.
                return Err(Flow::Fail(
                    self.fail(format!("{{{{{keyword}}}}} is not allowed")),
                ));
            }
        }
        Ok(())
    }

    fn print_value(&mut self, v: &Value) -> EResult<()> {
        match v {
            Value::Nil => self.write(b"<no value>"),
            Value::Str(s) => {
                let s = s.clone();
                self.write(&s)
            }
            other => {
                let mut p = Printer::new(self.data);
                p.sprint(std::slice::from_ref(other));
                let b = p.into_bytes();
                self.write(&b)
            }
        }
    }

    fn walk_if_or_with(&mut self, is_with: bool, dot: &Value, c: &'t Control) -> Result<(), Flow> {
        let mark = self.mark();
        let r = self.walk_chain(is_with, dot, c);
        self.pop(mark);
        r
    }

    /// Walks an if/with and its `{{else if}}`/`{{else with}}` links in a loop, so long
    /// chains cost no stack. Popping the variables once at the end (in the caller) leaves
    /// the same state as Go's nested pops.
    fn walk_chain(&mut self, is_with: bool, dot: &Value, c: &'t Control) -> Result<(), Flow> {
        let tree = self.tree;
        let (mut is_with, mut c) = (is_with, c);
        loop {
            let val = self.eval_pipeline(dot, c.pipe)?;
            if val.truth(self.data.len()) {
                return if is_with {
                    self.walk_list(&val, c.list)
                } else {
                    self.walk_list(dot, c.list)
                };
            }
            let Some(el) = c.else_list else {
                return Ok(());
            };
            if let [only] = tree.lists[el as usize].as_slice() {
                let next = match &tree.nodes[*only as usize] {
                    Node::If(inner) => Some((false, inner)),
                    Node::With(inner) => Some((true, inner)),
                    _ => None,
                };
                if let Some((w, inner)) = next {
                    self.at = At::Node(*only);
                    self.step()?;
                    (is_with, c) = (w, inner);
                    continue;
                }
            }
            return self.walk_list(dot, el);
        }
    }

    fn walk_range(&mut self, dot: &Value, id: NodeId, c: &'t Control) -> Result<(), Flow> {
        self.at = At::Node(id);
        let outer = self.mark();
        let r = self.walk_range_inner(dot, id, c);
        self.pop(outer);
        match r {
            Err(Flow::Break) => Ok(()),
            other => other,
        }
    }

    fn one_iteration(
        &mut self,
        id: NodeId,
        c: &'t Control,
        mark: usize,
        index: Value,
        elem: Value,
    ) -> Result<(), Flow> {
        self.iterations += 1;
        if self.iterations > self.limits.max_range_iterations {
            self.at = At::Node(id);
            return Err(Flow::Fail(self.limit(format!(
                "range iteration budget of {} exceeded",
                self.limits.max_range_iterations
            ))));
        }
        let pipe = &self.tree.pipes[c.pipe as usize];
        if !pipe.decl.is_empty() {
            if pipe.is_assign {
                if pipe.decl.len() > 1 {
                    self.set_var(&pipe.decl[0], index.clone())?;
                } else {
                    self.set_var(&pipe.decl[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if pipe.decl.len() > 1 {
            if pipe.is_assign {
                self.set_var(&pipe.decl[1], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let r = self.walk_list(&elem, c.list);
        self.pop(mark);
        match r {
            Err(Flow::Continue) => Ok(()),
            other => other,
        }
    }

    fn walk_range_inner(&mut self, dot: &Value, id: NodeId, c: &'t Control) -> Result<(), Flow> {
        let val = self.eval_pipeline(dot, c.pipe)?;
        let mark = self.mark();
        let ndecl = self.tree.pipes[c.pipe as usize].decl.len();
        let mut ran = false;
        match &val {
            Value::Int(_) | Value::Uint8(_) => {
                if ndecl > 1 {
                    let shown = self.sprint_one(&val);
                    return Err(Flow::Fail(self.fail(format!(
                        "can't use {shown} to iterate over more than one variable"
                    ))));
                }
                match val {
                    Value::Int(n) => {
                        for i in 0..n.max(0) {
                            ran = true;
                            self.one_iteration(id, c, mark, Value::Nil, Value::Int(i))?;
                        }
                    }
                    Value::Uint8(n) => {
                        for i in 0..n {
                            ran = true;
                            self.one_iteration(id, c, mark, Value::Nil, Value::Uint8(i))?;
                        }
                    }
                    _ => {}
                }
            }
            Value::Map => {
                let data = self.data;
                for (k, v) in data.iter() {
                    ran = true;
                    self.one_iteration(
                        id,
                        c,
                        mark,
                        Value::str(k.as_bytes()),
                        Value::str(v.as_bytes()),
                    )?;
                }
            }
            Value::Nil => {}
            other => {
                let shown = self.sprint_one(other);
                return Err(Flow::Fail(
                    self.fail(format!("range can't iterate over {shown}")),
                ));
            }
        }
        if !ran && let Some(el) = c.else_list {
            self.walk_list(dot, el)?;
        }
        Ok(())
    }

    fn sprint_one(&self, v: &Value) -> String {
        let mut p = Printer::new(self.data);
        p.sprint(std::slice::from_ref(v));
        String::from_utf8_lossy(&p.into_bytes()).into_owned()
    }

    fn eval_pipeline(&mut self, dot: &Value, pid: PipeId) -> EResult<Value> {
        let tree = self.tree;
        let pipe = &tree.pipes[pid as usize];
        self.at = At::Pipe(pid);
        let mut value: Final = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.push_var(name.as_str(), value.clone());
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Final) -> EResult<()> {
        if args.len() > 1 || fin.is_some() {
            let mut s = String::new();
            match &args[0] {
                // Go prints a pipeline operand here without its parentheses.
                Arg::Pipe { pipe, .. } => self.tree.pipe_string(*pipe, &mut s),
                other => self.tree.arg_string(other, &mut s),
            }
            return Err(self.fail(format!("can't give argument to non-function {s}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Cmd, fin: Final) -> EResult<Value> {
        self.step()?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                return self.eval_field_chain(dot.clone(), idents, &cmd.args, fin);
            }
            Arg::Chain { node, fields, .. } => {
                self.at = At::Arg(first);
                let recv = self.eval_arg(dot, node)?;
                return self.eval_field_chain(recv, fields, &cmd.args, fin);
            }
            Arg::Identifier { name, .. } => {
                self.at = At::Arg(first);
                return self.eval_function(dot, name, Some(cmd), &cmd.args[1..], fin);
            }
            Arg::Pipe { pipe, .. } => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, *pipe);
            }
            Arg::Variable { idents, .. } => {
                self.at = At::Arg(first);
                let value = self.var_value(&idents[0])?;
                if idents.len() == 1 {
                    self.not_a_function(&cmd.args, &fin)?;
                    return Ok(value);
                }
                return self.eval_field_chain(value, &idents[1..], &cmd.args, fin);
            }
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.fail("nil is not a command")),
            Arg::Number { .. } => self.ideal_constant(first),
            Arg::String { val, .. } => Ok(Value::str(val)),
            _ => Err(self.fail("can't evaluate command")),
        }
    }

    fn ideal_constant(&mut self, a: &'t Arg) -> EResult<Value> {
        self.at = At::Arg(a);
        match a {
            Arg::Number { val, text, .. } => match val {
                Number::Int(i) => Ok(Value::Int(*i)),
                Number::Float(f) => Ok(Value::Float(*f)),
                Number::Complex(r, i) => Ok(Value::Complex(*r, *i)),
                Number::Overflow => Err(self.fail(format!("{text} overflows int"))),
            },
            _ => Ok(Value::Nil),
        }
    }

    fn eval_field_chain(
        &mut self,
        receiver: Value,
        idents: &[String],
        args: &[Arg],
        fin: Final,
    ) -> EResult<Value> {
        let mut receiver = receiver;
        let n = idents.len();
        for ident in &idents[..n.saturating_sub(1)] {
            receiver = self.eval_field(ident, false, receiver)?;
        }
        let has_args = args.len() > 1 || fin.is_some();
        match idents.last() {
            Some(last) => self.eval_field(last, has_args, receiver),
            None => Ok(receiver),
        }
    }

    fn eval_field(&mut self, name: &str, has_args: bool, receiver: Value) -> EResult<Value> {
        match receiver {
            Value::Nil => Ok(Value::Nil),
            Value::Map => {
                if has_args {
                    return Err(self.fail(format!("{name} is not a method but has arguments")));
                }
                let v = self.data.get(name).map(|s| s.as_bytes()).unwrap_or(b"");
                Ok(Value::str(v))
            }
            other => Err(self.fail(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    /// Go's `evalArg` for parameters of type `reflect.Value` or `any`.
    fn eval_arg(&mut self, dot: &Value, a: &'t Arg) -> EResult<Value> {
        self.at = At::Arg(a);
        match a {
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Ok(Value::Nil),
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot.clone(), idents, std::slice::from_ref(a), None)
            }
            Arg::Variable { idents, .. } => {
                let value = self.var_value(&idents[0])?;
                if idents.len() == 1 {
                    return Ok(value);
                }
                self.eval_field_chain(value, &idents[1..], &[], None)
            }
            Arg::Pipe { pipe, .. } => self.eval_pipeline(dot, *pipe),
            Arg::Identifier { name, .. } => self.eval_function(dot, name, None, &[], None),
            Arg::Chain { node, fields, .. } => {
                let recv = self.eval_arg(dot, node)?;
                self.eval_field_chain(recv, fields, &[], None)
            }
            Arg::Bool { val, .. } => Ok(Value::Bool(*val)),
            Arg::Number { .. } => self.ideal_constant(a),
            Arg::String { val, .. } => Ok(Value::str(val)),
        }
    }

    /// Go's `evalArg` for a `string` parameter (printf's format).
    fn eval_string_arg(&mut self, dot: &Value, a: &'t Arg) -> EResult<Value> {
        match a {
            Arg::String { val, .. } => Ok(Value::str(val)),
            Arg::Nil { .. } => {
                self.at = At::Arg(a);
                Err(self.fail("cannot assign nil to string"))
            }
            Arg::Bool { .. } | Arg::Number { .. } => {
                self.at = At::Arg(a);
                let mut s = String::new();
                self.tree.arg_string(a, &mut s);
                Err(self.fail(format!("expected string; found {s}")))
            }
            _ => {
                let v = self.eval_arg(dot, a)?;
                self.validate_string(v)
            }
        }
    }

    fn validate_string(&self, v: Value) -> EResult<Value> {
        match v {
            Value::Str(_) => Ok(v),
            Value::Nil => Err(self.fail("invalid value; expected string")),
            other => Err(self.fail(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            ))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: Option<&'t Cmd>,
        args: &'t [Arg],
        fin: Final,
    ) -> EResult<Value> {
        let num_in = args.len() + usize::from(fin.is_some());
        // Arity, checked before any argument is evaluated (Go's evalCall).
        let (fixed, variadic) = match name {
            "and" | "or" | "call" | "printf" | "index" | "slice" | "eq" => (1, true),
            "html" | "js" | "urlquery" | "print" | "println" => (0, true),
            "len" | "not" => (1, false),
            _ => (2, false),
        };
        if variadic {
            if num_in < fixed {
                return Err(self.fail(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                )));
            }
        } else if num_in != fixed {
            return Err(self.fail(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            )));
        }

        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Value::Nil;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.truth(self.data.len()) == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }

        let mut argv: Vec<Value> = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let v = if name == "printf" && i == 0 {
                self.eval_string_arg(dot, a)?
            } else {
                self.eval_arg(dot, a)?
            };
            argv.push(v);
        }
        if let Some(f) = fin {
            if name == "printf" && argv.is_empty() {
                argv.push(self.validate_string(f)?);
            } else {
                argv.push(f);
            }
        }
        let callee = match (name, args.first()) {
            ("call", Some(a)) => {
                let mut s = String::new();
                self.tree.arg_string(a, &mut s);
                s
            }
            _ => String::new(),
        };
        let result = self.call_builtin(name, &argv, &callee);
        match result {
            Ok(v) => {
                self.charge(&v)?;
                Ok(v)
            }
            Err(e) => {
                if let Some(c) = cmd {
                    self.at = At::Cmd(c);
                }
                Err(self.fail(format!("error calling {name}: {e}")))
            }
        }
    }

    fn call_builtin(&mut self, name: &str, argv: &[Value], callee: &str) -> Result<Value, String> {
        let data = self.data;
        let printed = |f: &dyn Fn(&mut Printer)| {
            let mut p = Printer::new(data);
            f(&mut p);
            Value::str(&p.into_bytes())
        };
        match name {
            "not" => Ok(Value::Bool(!argv[0].truth(data.len()))),
            "len" => funcs::len(&argv[0], data),
            "index" => funcs::index(&argv[0], &argv[1..], data),
            "slice" => funcs::slice(&argv[0], &argv[1..]),
            "eq" => funcs::eq(&argv[0], &argv[1..], data).map(Value::Bool),
            "ne" => funcs::eq(&argv[0], &argv[1..2], data).map(|b| Value::Bool(!b)),
            "lt" => funcs::lt(&argv[0], &argv[1]).map(Value::Bool),
            "le" => funcs::le(&argv[0], &argv[1], data).map(Value::Bool),
            "gt" => funcs::le(&argv[0], &argv[1], data).map(|b| Value::Bool(!b)),
            "ge" => funcs::lt(&argv[0], &argv[1]).map(|b| Value::Bool(!b)),
            "print" => Ok(printed(&|p| p.sprint(argv))),
            "println" => Ok(printed(&|p| p.sprintln(argv))),
            "printf" => {
                let format = match &argv[0] {
                    Value::Str(s) => s.clone(),
                    _ => return Err("format is not a string".into()),
                };
                Ok(printed(&|p| p.sprintf(&format, &argv[1..])))
            }
            "html" => Ok(Value::str(&funcs::html_escape(&funcs::eval_args(
                argv, data,
            )))),
            "js" => Ok(Value::str(&funcs::js_escape(&funcs::eval_args(argv, data)))),
            "urlquery" => Ok(Value::str(&funcs::urlquery_escape(&funcs::eval_args(
                argv, data,
            )))),
            "call" => {
                let callee_name = callee;
                let callee = &argv[0];
                if let Value::Nil = callee {
                    return Err("call of nil".into());
                }
                Err(format!(
                    "non-function {} of type {}",
                    callee_name,
                    callee.type_name()
                ))
            }
            _ => Err(format!("{} is not a defined function", quote(name))),
        }
    }
}
