//! One table of a configuration file, read field by field: each field comes from its
//! `COREPUSH_*` variable when that is set, else from the table; what the table holds that no
//! field took is an unknown key.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{FanoutWindow, Protocol, SlowConsumer};
use crate::error::{Error, Result};

/// The `COREPUSH_*` variables in force, by name.
pub(crate) type Env = HashMap<String, String>;

/// A table being read: its path in the file (`servers.ws`), the prefix of its variables
/// (`COREPUSH_SERVER_WS`), and the keys not yet taken.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    origin: &'a str,
    path: String,
    prefix: String,
    table: Map<String, Value>,
    env: &'a Env,
}

impl<'a> Section<'a> {
    /// The file's top table. Its fields' variables are `COREPUSH_<FIELD>`.
    pub(crate) fn root(origin: &'a str, value: Value, env: &'a Env) -> Result<Self> {
        let table = match value {
            Value::Object(table) => table,
            other => {
                return Err(Error::Config(format!(
                    "{origin}: expected a table at the top, found {}",
                    shown(&other)
                )));
            }
        };
        Ok(Section {
            origin,
            path: String::new(),
            prefix: "COREPUSH".into(),
            table,
            env,
        })
    }

    /// The sub-table `key` (an empty one when absent, so that variables still apply), whose
    /// variables start with `<prefix>_<ENV_NAME>`.
    pub(crate) fn child(&mut self, key: &str, env_name: &str) -> Result<Section<'a>> {
        let path = self.path_of(key);
        let table = match self.table.remove(key) {
            None => Map::new(),
            Some(Value::Object(table)) => table,
            Some(other) => {
                return Err(self.bad(&path, &format!("expected a table, found {}", shown(&other))));
            }
        };
        Ok(Section {
            origin: self.origin,
            path,
            prefix: format!("{}_{}", self.prefix, env_part(env_name)),
            table,
            env: self.env,
        })
    }

    /// The same table, its variables named `COREPUSH_<FIELD>` (the runtime's).
    pub(crate) fn unprefixed(mut self) -> Self {
        self.prefix = "COREPUSH".into();
        self
    }

    /// Takes the sub-tables of `key` (`[servers.NAME]`), sorted by name; each one's variables
    /// start with `<prefix>_<ENV_NAME>_<NAME>`.
    pub(crate) fn children(&mut self, key: &str, env_name: &str) -> Result<Vec<(String, Self)>> {
        let mut all = self.child(key, env_name)?;
        let names: Vec<String> = all.table.keys().cloned().collect();
        names
            .into_iter()
            .map(|name| {
                let child = all.child(&name, &name)?;
                Ok((name, child))
            })
            .collect()
    }

    /// The value of `key` when it is a string (or its variable is set); a table is left in
    /// place for [`child`](Self::child).
    pub(crate) fn take_if_string(&mut self, key: &str) -> Option<String> {
        if let Some(text) = self.env.get(&self.var(key)) {
            if matches!(self.table.get(key), Some(Value::String(_))) {
                self.table.remove(key);
            }
            return Some(text.clone());
        }
        match self.table.remove(key) {
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                self.table.insert(key.to_owned(), other);
                None
            }
            None => None,
        }
    }

    /// Whether the table holds `key`, or a variable sets it or something under it.
    pub(crate) fn has(&self, key: &str) -> bool {
        let var = self.var(key);
        self.table.contains_key(key)
            || self.env.keys().any(|k| {
                k.strip_prefix(&var)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
            })
    }

    /// Reads `key` into `slot` when the variable or the table holds it; leaves `slot` as it
    /// is otherwise. The variable wins.
    pub(crate) fn field<T: Setting>(&mut self, key: &str, slot: &mut T) -> Result<()> {
        if let Some(value) = self.take(key)? {
            *slot = value;
        }
        Ok(())
    }

    /// The value of `key`, from the variable or the table, or `None` when neither holds it.
    pub(crate) fn take<T: Setting>(&mut self, key: &str) -> Result<Option<T>> {
        let var = self.var(key);
        let from_file = self.table.remove(key);
        if let Some(text) = self.env.get(&var) {
            return T::from_env(text).map(Some).map_err(|e| {
                Error::Config(format!(
                    "environment {var} ({}): {e}, found {text:?}",
                    self.path_of(key)
                ))
            });
        }
        match from_file {
            None => Ok(None),
            Some(value) => T::from_value(&value).map(Some).map_err(|e| {
                self.bad(&self.path_of(key), &format!("{e}, found {}", shown(&value)))
            }),
        }
    }

    /// Like [`take`](Self::take), for a field that must be there.
    pub(crate) fn required<T: Setting>(&mut self, key: &str, why: &str) -> Result<T> {
        match self.take(key)? {
            Some(value) => Ok(value),
            None => Err(self.bad(
                &self.path_of(key),
                &format!("missing ({why}; or set {})", self.var(key)),
            )),
        }
    }

    /// An error about this table's field `key`.
    pub(crate) fn error(&self, key: &str, message: &str) -> Error {
        self.bad(&self.path_of(key), message)
    }

    /// Ends the reading: a key that no field took is an error naming it.
    pub(crate) fn finish(self) -> Result<()> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(key) => Err(Error::Config(format!(
                "{}: unknown key {}",
                self.origin,
                self.path_of(key)
            ))),
        }
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn var(&self, key: &str) -> String {
        format!("{}_{}", self.prefix, env_part(key))
    }

    fn bad(&self, path: &str, message: &str) -> Error {
        Error::Config(format!("{}: {path}: {message}", self.origin))
    }
}

/// A name as it stands in a variable: upper case, anything but letters and digits as `_`.
pub(crate) fn env_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A value as an error shows it: its JSON text, cut short.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// A type a field can hold: read from a file's value or from a variable's text. The error
/// says what was expected; the caller adds the key and what was found.
pub(crate) trait Setting: Sized {
    /// From the file (TOML or JSON, both as JSON values).
    fn from_value(value: &Value) -> Result<Self, String>;
    /// From a variable. Defaults to the text as a JSON string.
    fn from_env(text: &str) -> Result<Self, String> {
        Self::from_value(&Value::String(text.to_owned()))
    }
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn from_value(value: &Value) -> Result<Self, String> {
                value
                    .as_u64()
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| format!("expected a whole number from 0 to {}", <$t>::MAX))
            }
            fn from_env(text: &str) -> Result<Self, String> {
                text.trim()
                    .parse()
                    .map_err(|_| format!("expected a whole number from 0 to {}", <$t>::MAX))
            }
        }
    )*};
}

whole_number!(u16, u32, u64, usize);

impl Setting for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| "expected true or false".into())
    }
    fn from_env(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("expected true or false (or 1 or 0)".into()),
        }
    }
}

impl Setting for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "expected a string".into())
    }
}

impl Setting for PathBuf {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Err("expected a file path".into()),
        }
    }
}

macro_rules! optional {
    ($($t:ty),*) => {$(
        /// Present in the file or a variable means `Some`.
        impl Setting for Option<$t> {
            fn from_value(value: &Value) -> Result<Self, String> {
                <$t>::from_value(value).map(Some)
            }
            fn from_env(text: &str) -> Result<Self, String> {
                <$t>::from_env(text).map(Some)
            }
        }
    )*};
}

optional!(String, PathBuf, SocketAddr);

/// A list: an array in the file; items separated by commas in a variable.
impl Setting for Vec<String> {
    fn from_value(value: &Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected an array of strings";
        value
            .as_array()
            .ok_or(EXPECTED)?
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(EXPECTED.into()))
            .collect()
    }
    fn from_env(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

/// `"10s"`, `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, or a whole number of milliseconds (a number
/// in the file, digits alone in a variable).
impl Setting for Duration {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => n
                .as_u64()
                .map(Duration::from_millis)
                .ok_or_else(expected_duration),
            Value::String(text) => parse_duration(text),
            _ => Err(expected_duration()),
        }
    }
}

/// A duration, or `"off"` (or `false`) for none.
impl Setting for Option<Duration> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Bool(false) | Value::Null => Ok(None),
            Value::String(text) if text.trim() == "off" => Ok(None),
            other => Duration::from_value(other)
                .map(Some)
                .map_err(|e| format!("{e}, or \"off\"")),
        }
    }
}

/// `"host:port"`: an IP address (`"[::1]:8080"`), or a name that resolves (its first address).
impl Setting for SocketAddr {
    fn from_value(value: &Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected an address \"HOST:PORT\"";
        let text = value.as_str().ok_or(EXPECTED)?;
        if let Ok(addr) = text.parse() {
            return Ok(addr);
        }
        text.to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| format!("{EXPECTED} (an IP address or a name that resolves)"))
    }
}

impl Setting for Protocol {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("websocket") => Ok(Protocol::WebSocket),
            Some("tcp_lines") => Ok(Protocol::TcpLines),
            Some("tcp_length") => Ok(Protocol::TcpLength),
            _ => Err("expected \"websocket\", \"tcp_lines\" or \"tcp_length\"".into()),
        }
    }
}

impl Setting for SlowConsumer {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value.as_str() {
            Some("close") => Ok(SlowConsumer::Close),
            Some("drop") => Ok(SlowConsumer::Drop),
            _ => Err("expected \"close\" or \"drop\"".into()),
        }
    }
}

/// `"adaptive"` (a 10 ms ceiling), `"adaptive 20ms"` (that ceiling), `"fixed 5ms"`, or a
/// duration alone (fixed).
impl Setting for FanoutWindow {
    fn from_value(value: &Value) -> Result<Self, String> {
        const EXPECTED: &str =
            "expected \"adaptive\", \"adaptive MAX\", \"fixed DURATION\" or a duration";
        if let Value::String(text) = value {
            let text = text.trim();
            let (kind, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
            let rest = rest.trim();
            match kind {
                "adaptive" if rest.is_empty() => return Ok(FanoutWindow::default()),
                "adaptive" => {
                    let max = parse_duration(rest).map_err(|_| EXPECTED.to_owned())?;
                    return Ok(FanoutWindow::Adaptive { max });
                }
                "fixed" => {
                    let window = parse_duration(rest).map_err(|_| EXPECTED.to_owned())?;
                    return Ok(FanoutWindow::Fixed(window));
                }
                _ => {}
            }
        }
        Duration::from_value(value)
            .map(FanoutWindow::Fixed)
            .map_err(|_| EXPECTED.to_owned())
    }
}

fn expected_duration() -> String {
    "expected a duration such as \"10s\", \"250ms\", \"2m\", or a number of milliseconds".into()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| expected_duration())?;
    let seconds = match unit.trim() {
        "" | "ms" => number / 1000.0,
        "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(expected_duration()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| expected_duration())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units_or_as_milliseconds() {
        let ms = Duration::from_millis;
        for (text, expected) in [
            ("10s", ms(10_000)),
            ("250ms", ms(250)),
            ("1.5s", ms(1500)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("40", ms(40)),
            (" 3 s ", ms(3000)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "s", "ten seconds", "-1s", "5d", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(Duration::from_value(&Value::from(7)), Ok(ms(7)));
        assert_eq!(Option::<Duration>::from_env("off"), Ok(None));
        assert_eq!(
            Option::<Duration>::from_value(&Value::Bool(false)),
            Ok(None)
        );
    }

    #[test]
    fn fanout_windows_read_as_a_kind_and_a_duration() {
        let ms = Duration::from_millis;
        for (text, expected) in [
            ("adaptive", FanoutWindow::default()),
            ("adaptive 20ms", FanoutWindow::Adaptive { max: ms(20) }),
            (" fixed 5ms ", FanoutWindow::Fixed(ms(5))),
            ("fixed 0", FanoutWindow::Fixed(ms(0))),
            ("2ms", FanoutWindow::Fixed(ms(2))),
        ] {
            assert_eq!(FanoutWindow::from_env(text), Ok(expected), "{text}");
        }
        assert_eq!(
            FanoutWindow::from_value(&Value::from(3)),
            Ok(FanoutWindow::Fixed(ms(3)))
        );
        for bad in ["", "adaptive soon", "fixed", "sometimes 5ms"] {
            assert!(FanoutWindow::from_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variable_names_are_upper_case_with_underscores() {
        assert_eq!(env_part("max_connections"), "MAX_CONNECTIONS");
        assert_eq!(env_part("eu-1.ws"), "EU_1_WS");
    }
}
