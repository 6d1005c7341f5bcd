//! What history a server keeps: rules by name pattern (see [`crate::history`]).

use std::time::Duration;

use crate::error::{Error, Result};

/// Which kind of stream a name is: a group's or a flag's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Group,
    Flag,
}

/// What history a server keeps: rules by name pattern, separately for groups and flags; the
/// first rule whose pattern matches a name gives its bounds. Defaults to none (no history).
///
/// A pattern is a name with `*` standing for any run of characters: `"chat:*"`,
/// `"*:news"`, `"*"` (every name), or a plain name.
///
/// ```
/// use std::time::Duration;
/// use corepush::HistoryConfig;
///
/// let history = HistoryConfig::default()
///     .groups("chat:*", 100, None)
///     .flags("*", 50, Some(Duration::from_secs(600)));
/// # let _ = history;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The rules, tried in order.
    pub rules: Vec<HistoryRule>,
}

/// One rule of a [`HistoryConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRule {
    /// Whether the rule is for flags (else for groups).
    pub is_flag: bool,
    /// The names it covers (`*` for any run of characters).
    pub pattern: String,
    /// The most messages kept per name; 0 for no count bound (then `max_age` must be set).
    pub max_messages: usize,
    /// How long a message is kept; `None` for no age bound.
    pub max_age: Option<Duration>,
}

/// The bounds of one name's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) max_messages: usize,
    pub(crate) max_age: Option<Duration>,
}

impl HistoryConfig {
    /// Keeps the last `max_messages` of every group and every flag.
    pub fn everything(max_messages: usize) -> Self {
        HistoryConfig::default()
            .groups("*", max_messages, None)
            .flags("*", max_messages, None)
    }

    /// Adds a rule for the groups whose names match `pattern`.
    pub fn groups(
        mut self,
        pattern: impl Into<String>,
        max_messages: usize,
        max_age: Option<Duration>,
    ) -> Self {
        self.rules.push(HistoryRule {
            is_flag: false,
            pattern: pattern.into(),
            max_messages,
            max_age,
        });
        self
    }

    /// Adds a rule for the flags whose names match `pattern`.
    pub fn flags(
        mut self,
        pattern: impl Into<String>,
        max_messages: usize,
        max_age: Option<Duration>,
    ) -> Self {
        self.rules.push(HistoryRule {
            is_flag: true,
            pattern: pattern.into(),
            max_messages,
            max_age,
        });
        self
    }

    /// Whether no history is kept at all.
    pub fn is_off(&self) -> bool {
        self.rules.is_empty()
    }

    /// Fails on a rule without any bound.
    pub(crate) fn validate(&self) -> Result<()> {
        for r in &self.rules {
            if r.max_messages == 0 && r.max_age.is_none_or(|a| a.is_zero()) {
                return Err(Error::Config(format!(
                    "history rule {:?}: give max_messages or max_age (a history needs a bound)",
                    r.pattern
                )));
            }
        }
        Ok(())
    }

    /// The bounds of a name's stream, if it is kept.
    pub(crate) fn bound(&self, kind: Kind, name: &str) -> Option<Bound> {
        self.rules
            .iter()
            .find(|r| r.is_flag == (kind == Kind::Flag) && glob(&r.pattern, name))
            .map(|r| Bound {
                max_messages: r.max_messages,
                max_age: r.max_age,
            })
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return true;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(glob("*", "anything"));
        assert!(glob("*", ""));
        assert!(glob("chat:*", "chat:1"));
        assert!(!glob("chat:*", "chats"));
        assert!(glob("*:news", "a:news"));
        assert!(!glob("*:news", "a:newsy"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXc"));
        assert!(glob("room", "room"));
        assert!(!glob("room", "room1"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn rules_need_a_bound() {
        assert!(HistoryConfig::everything(0).validate().is_err());
        assert!(HistoryConfig::everything(3).validate().is_ok());
        let by_age = HistoryConfig::default().groups("*", 0, Some(Duration::from_secs(1)));
        assert!(by_age.validate().is_ok());
        assert!(by_age.bound(Kind::Flag, "x").is_none());
        assert!(by_age.bound(Kind::Group, "x").is_some());
    }
}
