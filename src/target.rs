//! What a call names: its targets (clients, flags, groups, everyone), its payload, the scope
//! and exclusions that travel with it, and the conversions that let every method take one
//! value or many.

use std::borrow::Cow;

use crate::id::{ClientId, WorkerId};

/// Whom a push or close is for. Targets are values, resolved by the backend.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Clients(Vec<ClientId>),
    Flags(Vec<String>),
    Groups(Vec<String>),
    All,
}

/// An unframed message: the backend frames it for the server's protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Payload<'a> {
    pub(crate) is_text: bool,
    pub(crate) bytes: &'a [u8],
}

/// Limits that travel with a call: the core loop it is confined to, and the ids to skip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) worker: Option<WorkerId>,
    pub(crate) except: &'a [ClientId],
}

impl Scope<'_> {
    /// Whether a client falls inside the scope (ignoring exclusions).
    pub(crate) fn covers(&self, id: ClientId) -> bool {
        self.worker.is_none_or(|w| w == id.worker())
    }
}

/// A payload sent as it is: text (a WebSocket text frame) or bytes (a binary frame).
/// Built from `&str`/`String` (text) or `&[u8]`/`Vec<u8>` (binary).
#[derive(Debug, Clone)]
pub struct Raw<'a> {
    is_text: bool,
    bytes: Cow<'a, [u8]>,
}

impl<'a> Raw<'a> {
    /// A text payload.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Self {
        let bytes = match text.into() {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
        Raw {
            is_text: true,
            bytes,
        }
    }

    /// A binary payload.
    pub fn binary(bytes: impl Into<Cow<'a, [u8]>>) -> Self {
        Raw {
            is_text: false,
            bytes: bytes.into(),
        }
    }

    /// Whether this is text.
    pub fn is_text(&self) -> bool {
        self.is_text
    }

    /// The payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<'a> From<&'a str> for Raw<'a> {
    fn from(s: &'a str) -> Self {
        Raw::text(s)
    }
}
impl<'a> From<&'a String> for Raw<'a> {
    fn from(s: &'a String) -> Self {
        Raw::text(s.as_str())
    }
}
impl From<String> for Raw<'_> {
    fn from(s: String) -> Self {
        Raw::text(s)
    }
}
impl<'a> From<&'a [u8]> for Raw<'a> {
    fn from(b: &'a [u8]) -> Self {
        Raw::binary(b)
    }
}
impl<'a, const N: usize> From<&'a [u8; N]> for Raw<'a> {
    fn from(b: &'a [u8; N]) -> Self {
        Raw::binary(&b[..])
    }
}
impl From<Vec<u8>> for Raw<'_> {
    fn from(b: Vec<u8>) -> Self {
        Raw::binary(b)
    }
}

/// One client id or many: `ClientId`, `Option<ClientId>`, arrays, slices and `Vec`s of them.
pub trait IntoIds {
    /// The ids.
    fn into_ids(self) -> Vec<ClientId>;
}

impl IntoIds for ClientId {
    fn into_ids(self) -> Vec<ClientId> {
        vec![self]
    }
}
impl IntoIds for Option<ClientId> {
    fn into_ids(self) -> Vec<ClientId> {
        self.into_iter().collect()
    }
}
impl IntoIds for Vec<ClientId> {
    fn into_ids(self) -> Vec<ClientId> {
        self
    }
}
impl IntoIds for &Vec<ClientId> {
    fn into_ids(self) -> Vec<ClientId> {
        self.clone()
    }
}
impl IntoIds for &[ClientId] {
    fn into_ids(self) -> Vec<ClientId> {
        self.to_vec()
    }
}
impl<const N: usize> IntoIds for [ClientId; N] {
    fn into_ids(self) -> Vec<ClientId> {
        self.to_vec()
    }
}
impl<const N: usize> IntoIds for &[ClientId; N] {
    fn into_ids(self) -> Vec<ClientId> {
        self.to_vec()
    }
}

/// One name (flag or group) or many: `&str`, `String`, arrays, slices and `Vec`s of them.
pub trait IntoNames {
    /// The names.
    fn into_names(self) -> Vec<String>;
}

impl IntoNames for &str {
    fn into_names(self) -> Vec<String> {
        vec![self.to_owned()]
    }
}
impl IntoNames for String {
    fn into_names(self) -> Vec<String> {
        vec![self]
    }
}
impl IntoNames for &String {
    fn into_names(self) -> Vec<String> {
        vec![self.clone()]
    }
}
impl IntoNames for Vec<String> {
    fn into_names(self) -> Vec<String> {
        self
    }
}
impl IntoNames for &[String] {
    fn into_names(self) -> Vec<String> {
        self.to_vec()
    }
}
impl IntoNames for &Vec<String> {
    fn into_names(self) -> Vec<String> {
        self.clone()
    }
}
impl IntoNames for Vec<&str> {
    fn into_names(self) -> Vec<String> {
        self.into_iter().map(str::to_owned).collect()
    }
}
impl IntoNames for &[&str] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}
impl<const N: usize> IntoNames for [&str; N] {
    fn into_names(self) -> Vec<String> {
        self.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// Which core loops a worker message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workers {
    /// Every core loop.
    All,
    /// These core loops; indices past the last core loop are skipped.
    Some(Vec<WorkerId>),
}

impl Workers {
    /// The chosen core loops that exist, each once, in order.
    pub(crate) fn resolve(&self, workers: usize) -> Vec<WorkerId> {
        match self {
            Workers::All => (0..workers).map(|w| WorkerId(w as u16)).collect(),
            Workers::Some(list) => {
                let mut v: Vec<WorkerId> = list
                    .iter()
                    .copied()
                    .filter(|w| w.index() < workers)
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

impl From<WorkerId> for Workers {
    fn from(w: WorkerId) -> Self {
        Workers::Some(vec![w])
    }
}
impl From<Vec<WorkerId>> for Workers {
    fn from(v: Vec<WorkerId>) -> Self {
        Workers::Some(v)
    }
}
impl From<&[WorkerId]> for Workers {
    fn from(v: &[WorkerId]) -> Self {
        Workers::Some(v.to_vec())
    }
}
impl<const N: usize> From<[WorkerId; N]> for Workers {
    fn from(v: [WorkerId; N]) -> Self {
        Workers::Some(v.to_vec())
    }
}
impl From<Option<WorkerId>> for Workers {
    /// `None` means every core loop.
    fn from(w: Option<WorkerId>) -> Self {
        w.map_or(Workers::All, |w| Workers::Some(vec![w]))
    }
}
