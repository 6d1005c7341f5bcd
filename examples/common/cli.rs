//! The examples' one way of reading a command line: clap's derive (`--help`, `--flag value`
//! and `--flag=value`, values such as `::1` or `-5` taken as they are), with `--help` handed
//! back as a value so that the caller decides where it goes, and errors as one line that
//! names the argument: `unknown argument "--bogus"`, `--port needs a value`, `--port is
//! required`, `--port expects a port number 0-65535, not "x"`, `--host must not be empty`.
//!
//! A value parser returns what it expected (`"a port number 0-65535"`); the message adds the
//! flag and the value.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

/// Parses the arguments after the program name: `Ok(None)` for `--help` (or `-h`).
pub(crate) fn parse<T, I, S>(args: I) -> Result<Option<T>, String>
where
    T: Parser,
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let name = T::command().get_name().to_owned();
    let args = std::iter::once(name).chain(args.into_iter().map(Into::into));
    match T::try_parse_from(args) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(e) if e.kind() == ErrorKind::DisplayHelp => Ok(None),
        Err(e) => Err(message(&e)),
    }
}

/// The help `--help` prints: the usage, then each flag with its default.
pub(crate) fn help<T: CommandFactory>() -> String {
    T::command().render_help().to_string()
}

/// The usage line printed after an error.
pub(crate) fn usage<T: CommandFactory>() -> String {
    let name = T::command().get_name().to_owned();
    format!(
        "{}\nFor more information, try '{name} --help'.",
        T::command().render_usage()
    )
}

/// A one-line message naming the argument and, where there is one, the value.
fn message(e: &clap::Error) -> String {
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(list)) => Some(list.join(", ")),
        _ => None,
    };
    // clap names a flag with its value's placeholder: "--port <PORT>".
    let arg = text(ContextKind::InvalidArg).map(|a| flag_of(&a));
    let value = text(ContextKind::InvalidValue);
    match (e.kind(), arg, value) {
        (ErrorKind::UnknownArgument, Some(arg), _) => format!("unknown argument {arg:?}"),
        (ErrorKind::InvalidValue, Some(arg), Some(value)) if value.is_empty() => {
            format!("{arg} needs a value")
        }
        (ErrorKind::InvalidValue, Some(arg), Some(value)) => {
            let valid = match e.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(list)) => one_of(list),
                _ => "another value".to_owned(),
            };
            format!("{arg} expects {valid}, not {value:?}")
        }
        (ErrorKind::ValueValidation, Some(arg), Some(value)) if value.is_empty() => {
            format!("{arg} must not be empty")
        }
        (ErrorKind::ValueValidation, Some(arg), Some(value)) => {
            let expected = std::error::Error::source(e)
                .map_or_else(|| "another value".to_owned(), ToString::to_string);
            format!("{arg} expects {expected}, not {value:?}")
        }
        (ErrorKind::MissingRequiredArgument, Some(_), _) => {
            let names: Vec<String> = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(list)) => list.iter().map(|a| flag_of(a)).collect(),
                Some(ContextValue::String(a)) => vec![flag_of(a)],
                _ => Vec::new(),
            };
            match names.as_slice() {
                [one] => format!("{one} is required"),
                _ => format!("{} are required", one_of(&names).replace(" or ", " and ")),
            }
        }
        (ErrorKind::ArgumentConflict, Some(arg), _) => {
            let other = flag_of(&text(ContextKind::PriorArg).unwrap_or_default());
            format!("{arg} does not go with {other}")
        }
        _ => {
            // Anything else: clap's own first line, without its "error: ".
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    }
}

/// The flag of clap's `--port <PORT>`.
fn flag_of(arg: &str) -> String {
    arg.split([' ', '=']).next().unwrap_or_default().to_owned()
}

/// `a, b or c`.
fn one_of(list: &[String]) -> String {
    match list.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => "another value".to_owned(),
    }
}

/// Value parsers: each says what it expected.
pub(crate) mod value {
    /// A port, 0 to 65535.
    pub(crate) fn port(text: &str) -> Result<u16, String> {
        text.parse().map_err(|_| "a port number 0-65535".to_owned())
    }

    /// A number from `min` to `max`.
    pub(crate) fn within<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        move |text| {
            text.parse()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("a number from {min} to {max}"))
        }
    }

    /// Any text but the empty one.
    pub(crate) fn non_empty(text: &str) -> Result<String, String> {
        if text.is_empty() {
            Err("a value that is not empty".to_owned())
        } else {
            Ok(text.to_owned())
        }
    }
}
