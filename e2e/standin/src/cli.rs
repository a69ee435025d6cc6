//! Command-line parsing with the semantics of the real tools' parsers.
//!
//! AuroraBoot uses urfave/cli v2, which hands each flag set to Go's `flag` package: flags come
//! first and parsing stops at the first positional argument (or after `--`). luet uses
//! cobra/pflag, which accepts flags anywhere. The stand-in reproduces both, and where the real
//! AuroraBoot would silently ignore a flag (after the first positional) it fails instead, so a
//! wrongly ordered argument vector is caught in the test cluster.

use std::collections::BTreeMap;
use std::fmt;

/// The kind of value a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    String,
    /// urfave's StringSliceFlag: repeatable, every value split on commas.
    StringSlice,
}

/// One flag: its names (the first is the canonical one) and its kind.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub names: &'static [&'static str],
    pub kind: Kind,
}

impl Spec {
    pub const fn new(names: &'static [&'static str], kind: Kind) -> Spec {
        Spec { names, kind }
    }
}

/// A usage error: the message the real parser prints, exit status 1.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The values given for a flag set, keyed by canonical name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    bools: BTreeMap<&'static str, bool>,
    strings: BTreeMap<&'static str, String>,
    slices: BTreeMap<&'static str, Vec<String>>,
    /// `-h`/`--help` was given.
    pub help: bool,
}

impl Flags {
    pub fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    pub fn string(&self, name: &str) -> Option<&str> {
        self.strings.get(name).map(String::as_str)
    }
    pub fn slice(&self, name: &str) -> &[String] {
        self.slices.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
    fn set(&mut self, spec: &Spec, value: &str) {
        let name = spec.names[0];
        match spec.kind {
            Kind::Bool => {
                // Only called with values that parse_go_bool accepted.
                self.bools
                    .insert(name, parse_go_bool(value).unwrap_or(false));
            }
            Kind::String => {
                self.strings.insert(name, value.to_string());
            }
            Kind::StringSlice => self
                .slices
                .entry(name)
                .or_default()
                .extend(value.split(',').map(str::to_string)),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn lookup<'a>(specs: &'a [Spec], name: &str) -> Option<&'a Spec> {
    specs.iter().find(|s| s.names.contains(&name))
}

/// The result of parsing one urfave/Go flag set.
#[derive(Debug, PartialEq, Eq)]
pub struct GoParse {
    pub flags: Flags,
    /// Everything from the first positional argument on.
    pub rest: Vec<String>,
    /// Parsing ended at `--` (so the rest is positional by the user's choice).
    pub dashdash: bool,
}

/// Parses `args` the way Go's `flag.FlagSet.Parse` does for `specs`.
pub fn parse_go(specs: &[Spec], args: &[String]) -> Result<GoParse, UsageError> {
    let mut flags = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_str();
        if s.len() < 2 || !s.starts_with('-') {
            break;
        }
        let mut minuses = 1;
        if s.as_bytes()[1] == b'-' {
            minuses = 2;
            if s.len() == 2 {
                return Ok(GoParse {
                    flags,
                    rest: args[i + 1..].to_vec(),
                    dashdash: true,
                });
            }
        }
        let name_value = &s[minuses..];
        if name_value.is_empty() || name_value.starts_with('-') || name_value.starts_with('=') {
            return Err(UsageError(format!("bad flag syntax: {s}")));
        }
        i += 1;
        let (name, value) = match name_value[1..].find('=') {
            Some(pos) => (&name_value[..pos + 1], Some(&name_value[pos + 2..])),
            None => (name_value, None),
        };
        let Some(spec) = lookup(specs, name) else {
            if name == "help" || name == "h" {
                flags.help = true;
                continue;
            }
            return Err(UsageError(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        match spec.kind {
            Kind::Bool => {
                let value = value.unwrap_or("true");
                if parse_go_bool(value).is_none() {
                    return Err(UsageError(format!(
                        "invalid boolean value {value:?} for -{name}: parse error"
                    )));
                }
                flags.set(spec, value);
            }
            Kind::String | Kind::StringSlice => {
                let value = match value {
                    Some(v) => v.to_string(),
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => return Err(UsageError(format!("flag needs an argument: -{name}"))),
                };
                flags.set(spec, &value);
            }
        }
    }
    Ok(GoParse {
        flags,
        rest: args[i..].to_vec(),
        dashdash: false,
    })
}

/// Fails when a flag-looking argument follows the first positional: AuroraBoot would drop it
/// without a word, which in the operator would mean a silently missing option.
pub fn refuse_flags_after_positional(parse: &GoParse) -> Result<(), UsageError> {
    if parse.dashdash {
        return Ok(());
    }
    match parse
        .rest
        .iter()
        .skip(1)
        .find(|a| a.len() > 1 && a.starts_with('-'))
    {
        Some(flag) => Err(UsageError(format!(
            "osartifact-standin: '{flag}' after the first positional argument would be ignored by \
             AuroraBoot (urfave/cli stops parsing flags there)"
        ))),
        None => Ok(()),
    }
}

/// Parses `args` the way cobra/pflag does: flags anywhere, `--` ends them, unknown flags fail.
/// Returns the flags and the positional arguments.
pub fn parse_pflag(specs: &[Spec], args: &[String]) -> Result<(Flags, Vec<String>), UsageError> {
    let mut flags = Flags::default();
    let mut positionals = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let s = args[i].as_str();
        i += 1;
        if s == "--" {
            positionals.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = s.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let long_spec = specs
                .iter()
                .find(|sp| sp.names.iter().any(|n| n.len() > 1 && *n == name));
            let Some(spec) = long_spec else {
                if name == "help" {
                    flags.help = true;
                    continue;
                }
                return Err(UsageError(format!("unknown flag: --{name}")));
            };
            let value = match (spec.kind, value) {
                (_, Some(v)) => v.to_string(),
                (Kind::Bool, None) => "true".to_string(),
                (_, None) if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                (_, None) => {
                    return Err(UsageError(format!("flag needs an argument: --{name}")));
                }
            };
            if spec.kind == Kind::Bool && parse_go_bool(&value).is_none() {
                return Err(UsageError(format!(
                    "invalid argument {value:?} for \"--{name}\" flag: strconv.ParseBool: parsing {value:?}: invalid syntax"
                )));
            }
            flags.set(spec, &value);
        } else if s.len() > 1 && s.starts_with('-') {
            // Shorthand: one letter, value attached or in the next argument.
            let short = &s[1..2];
            let Some(spec) = specs.iter().find(|sp| sp.names.contains(&short)) else {
                if short == "h" {
                    flags.help = true;
                    continue;
                }
                return Err(UsageError(format!(
                    "unknown shorthand flag: '{short}' in {s}"
                )));
            };
            let attached = s[2..].strip_prefix('=').unwrap_or(&s[2..]);
            let value = if spec.kind == Kind::Bool {
                if attached.is_empty() {
                    "true".to_string()
                } else {
                    attached.to_string()
                }
            } else if !attached.is_empty() {
                attached.to_string()
            } else if i < args.len() {
                i += 1;
                args[i - 1].clone()
            } else {
                return Err(UsageError(format!(
                    "flag needs an argument: '{short}' in -{short}"
                )));
            };
            flags.set(spec, &value);
        } else {
            positionals.push(s.to_string());
        }
    }
    Ok((flags, positionals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const SPECS: &[Spec] = &[
        Spec::new(&["date"], Kind::Bool),
        Spec::new(&["output", "o"], Kind::String),
        Spec::new(&["set"], Kind::StringSlice),
    ];

    #[test]
    fn go_flags_stop_at_the_first_positional() {
        let p = parse_go(SPECS, &args(&["--output", "/w", "dir:/r", "--date"])).unwrap();
        assert_eq!(p.flags.string("output"), Some("/w"));
        assert!(!p.flags.bool("date"));
        assert_eq!(p.rest, args(&["dir:/r", "--date"]));
        let err = refuse_flags_after_positional(&p).unwrap_err();
        assert_eq!(
            err.0,
            "osartifact-standin: '--date' after the first positional argument would be ignored by \
             AuroraBoot (urfave/cli stops parsing flags there)"
        );
    }

    #[test]
    fn go_flag_forms() {
        let p = parse_go(
            SPECS,
            &args(&["-o=/a", "--date=false", "-set", "a=1,b=2", "--set=c=3", "x"]),
        )
        .unwrap();
        assert_eq!(p.flags.string("output"), Some("/a"));
        assert!(!p.flags.bool("date"));
        assert_eq!(p.flags.slice("set"), ["a=1", "b=2", "c=3"]);
        assert_eq!(p.rest, args(&["x"]));
        refuse_flags_after_positional(&p).unwrap();

        let p = parse_go(SPECS, &args(&["--date", "x"])).unwrap();
        assert!(
            p.flags.bool("date"),
            "a bool flag does not take the next argument"
        );
        let p = parse_go(SPECS, &args(&["--date=T", "-o", "/b"])).unwrap();
        assert!(p.flags.bool("date"));
        assert_eq!(p.flags.string("output"), Some("/b"));
        assert!(p.rest.is_empty());
    }

    #[test]
    fn go_flag_errors() {
        let e = |v: &[&str]| parse_go(SPECS, &args(v)).unwrap_err().0;
        assert_eq!(e(&["--nope", "x"]), "flag provided but not defined: -nope");
        assert_eq!(e(&["-x=1"]), "flag provided but not defined: -x");
        assert_eq!(
            e(&["--date=maybe"]),
            "invalid boolean value \"maybe\" for -date: parse error"
        );
        assert_eq!(e(&["--output"]), "flag needs an argument: -output");
        assert_eq!(e(&["---output"]), "bad flag syntax: ---output");
        assert_eq!(e(&["-=x"]), "bad flag syntax: -=x");
    }

    #[test]
    fn go_dashdash_ends_flags_and_allows_dashes_after() {
        let p = parse_go(SPECS, &args(&["--date", "--", "-weird", "--x"])).unwrap();
        assert!(p.dashdash);
        assert_eq!(p.rest, args(&["-weird", "--x"]));
        refuse_flags_after_positional(&p).unwrap();
        // A lone "-" is a positional.
        let p = parse_go(SPECS, &args(&["-", "a"])).unwrap();
        assert_eq!(p.rest, args(&["-", "a"]));
    }

    #[test]
    fn go_help_flag() {
        let p = parse_go(SPECS, &args(&["-h"])).unwrap();
        assert!(p.flags.help);
    }

    #[test]
    fn pflag_flags_anywhere() {
        let specs = &[
            Spec::new(&["arch"], Kind::String),
            Spec::new(&["local", "l"], Kind::Bool),
        ];
        let (f, pos) = parse_pflag(
            specs,
            &args(&["img", "--arch", "arm64", "a", "--local", "b"]),
        )
        .unwrap();
        assert_eq!(f.string("arch"), Some("arm64"));
        assert!(f.bool("local"));
        assert_eq!(pos, args(&["img", "a", "b"]));
        let (f, pos) = parse_pflag(specs, &args(&["--arch=amd64", "--", "--local"])).unwrap();
        assert_eq!(f.string("arch"), Some("amd64"));
        assert!(!f.bool("local"));
        assert_eq!(pos, args(&["--local"]));
        assert_eq!(
            parse_pflag(specs, &args(&["--nope"])).unwrap_err().0,
            "unknown flag: --nope"
        );
        assert_eq!(
            parse_pflag(specs, &args(&["-z"])).unwrap_err().0,
            "unknown shorthand flag: 'z' in -z"
        );
        let (f, _) = parse_pflag(specs, &args(&["-l"])).unwrap();
        assert!(f.bool("local"));
    }
}
