//! Who owns what on the engine, written so that only this server can
//! write it.
//!
//! Every container, volume and network made through dockwire carries
//! dockwire's labels (`dockwire.owner`, `dockwire.managed`, and for
//! containers `dockwire.auto-remove` and `dockwire.server`) and a seal:
//! `dockwire.seal`, an HMAC-SHA256 under the server's [`OwnerKey`] over
//! the object's kind, its name on the engine and those labels' values
//! (and a container's lifetimes, `dockwire.ttl` and
//! `dockwire.idle-timeout`, when it carries them).
//! An object belongs to the owner its labels name only when its seal
//! verifies. Nothing a caller or an image writes can make a seal: callers'
//! `dockwire.*` labels are dropped at create, an image's labels cannot
//! know the key, and a seal copied from one object to another fails on the
//! other's name. Objects made outside dockwire, or by a server with
//! another key, belong to nobody (only admins reach them).
//!
//! The key lives in the server's state directory, so ownership survives a
//! restart; two servers share ownership only when they share the key.
//!
//! A user's objects also have names of their own: the name a user gives
//! (`web`) is the engine's `dw-<tag>-web`, where `<tag>` is derived from
//! the owner ([`engine_name`]), so that a user's names cannot collide with
//! another peer's, nor look like a container id (they are never hex).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use dockwire_core::CallError;
use ring::{digest, hmac, rand};

use crate::catalog::*;
use crate::error::invalid_input;

/// The label holding an object's seal.
pub const LABEL_SEAL: &str = "dockwire.seal";

/// The labels a seal covers, in the order it covers them.
const SEALED: [&str; 4] = [LABEL_MANAGED, LABEL_OWNER, LABEL_AUTO_REMOVE, LABEL_SERVER];

/// Labels a seal covers too when the object carries them (by name, so
/// that a label added to a sealed object breaks its seal, while objects
/// sealed before these labels existed keep theirs).
const SEALED_IF_PRESENT: [&str; 2] = [LABEL_TTL, LABEL_IDLE_TIMEOUT];

/// The longest name a user may give an object.
pub(crate) const MAX_NAME: usize = 64;

/// The shortest all-hex name that is refused: Docker's short ids are 12
/// hex digits, and a name shaped like one reads as an id.
const MIN_ID_LEN: usize = 12;

/// The kinds of objects a seal tells apart: one kind's seal never passes
/// for another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A container.
    Container,
    /// A volume.
    Volume,
    /// A network.
    Network,
    /// An image a user built or committed (sealed over its owner only:
    /// its id is not known before it is made, see [`OwnerKey::image_seal`]).
    Image,
}

impl Kind {
    /// Its name in messages and seals.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Image => "image",
        }
    }
}

/// The server's secret for sealing ownership. Keep it private to the
/// server (the `dockwire` command keeps it in its state directory, mode
/// 0600).
#[derive(Clone)]
pub struct OwnerKey(hmac::Key);

/// The length of a key's bytes, as [`OwnerKey::generate`] makes them.
pub const OWNER_KEY_LEN: usize = 32;

impl OwnerKey {
    /// The key of `bytes` (use [`OwnerKey::generate`] to make them).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        OwnerKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Fresh random bytes for a key, to keep and give to
    /// [`OwnerKey::from_bytes`].
    pub fn generate() -> Result<[u8; OWNER_KEY_LEN], ring::error::Unspecified> {
        let mut bytes = [0u8; OWNER_KEY_LEN];
        rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut bytes)?;
        Ok(bytes)
    }

    /// A key for this process only: what it seals belongs to nobody once
    /// the process is gone.
    pub fn ephemeral() -> Self {
        match OwnerKey::generate() {
            Ok(bytes) => OwnerKey::from_bytes(&bytes),
            // The system's random source failed: a key from the clock and
            // the pid is still unknown to peers, if weaker.
            Err(_) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let seed = format!("{now}:{}", std::process::id());
                OwnerKey::from_bytes(digest::digest(&digest::SHA256, seed.as_bytes()).as_ref())
            }
        }
    }

    /// The seal of an object of `kind` named `name` on the engine, with
    /// `labels`.
    pub(crate) fn seal(&self, kind: Kind, name: &str, labels: &HashMap<String, String>) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(kind.as_str().as_bytes());
        context.update(&[0]);
        context.update(name.as_bytes());
        for key in SEALED {
            context.update(&[0]);
            match labels.get(key) {
                // Length-prefixed, so that no value can pass for another
                // split of the same bytes.
                Some(value) => {
                    context.update(&(value.len() as u64).to_be_bytes());
                    context.update(value.as_bytes());
                }
                None => context.update(&u64::MAX.to_be_bytes()),
            }
        }
        for key in SEALED_IF_PRESENT {
            let Some(value) = labels.get(key) else {
                continue;
            };
            context.update(&[1]);
            context.update(&(key.len() as u64).to_be_bytes());
            context.update(key.as_bytes());
            context.update(&(value.len() as u64).to_be_bytes());
            context.update(value.as_bytes());
        }
        hex(context.sign().as_ref())
    }

    /// Adds the seal to `labels` (dockwire's own already in them) of an
    /// object of `kind` named `name` on the engine. Public for servers
    /// (and tests) that make objects behind the service's back with the
    /// same key: the key is the only capability a seal needs.
    pub fn seal_labels(&self, kind: Kind, name: &str, labels: &mut HashMap<String, String>) {
        let seal = self.seal(kind, name, labels);
        labels.insert(LABEL_SEAL.into(), seal);
    }

    /// The owner of an object of `kind` named `name` on the engine (with
    /// or without Docker's leading `/`) carrying `labels`: the one its
    /// labels name, when its seal verifies; else nobody.
    pub(crate) fn owner<'a>(
        &self,
        kind: Kind,
        name: &str,
        labels: &'a HashMap<String, String>,
    ) -> Option<&'a str> {
        let name = name.strip_prefix('/').unwrap_or(name);
        let seal = labels.get(LABEL_SEAL)?;
        let matches = same_seal(seal, &self.seal(kind, name, labels));
        matches.then(|| labels.get(LABEL_OWNER).map(String::as_str))?
    }

    /// The seal of the images `owner` makes: written with the owner in
    /// [`LABEL_IMAGE_OWNER`] and [`LABEL_IMAGE_SEAL`]. One per owner (an
    /// image's id follows from its labels, so it cannot be sealed over):
    /// a user never reads another's images' labels, and its own image's
    /// seal only proves the image its own.
    pub(crate) fn image_seal(&self, owner: &str) -> String {
        let labels = HashMap::from([(LABEL_OWNER.to_owned(), owner.to_owned())]);
        self.seal(Kind::Image, "", &labels)
    }

    /// The owner of an image with `labels`: the one
    /// [`LABEL_IMAGE_OWNER`] names, when [`LABEL_IMAGE_SEAL`] verifies.
    pub(crate) fn image_owner<'a>(&self, labels: &'a HashMap<String, String>) -> Option<&'a str> {
        let owner = labels.get(LABEL_IMAGE_OWNER)?;
        let seal = labels.get(LABEL_IMAGE_SEAL)?;
        same_seal(seal, &self.image_seal(owner)).then_some(owner.as_str())
    }
}

/// Whether `seal` is `expected`, compared in constant time: a seal is a
/// MAC.
fn same_seal(seal: &str, expected: &str) -> bool {
    seal.len() == expected.len()
        && seal
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
}

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerKey(..)")
    }
}

/// A short, stable tag of `owner` for its objects' engine names: 12 hex
/// digits of its SHA-256.
pub(crate) fn tag(owner: &str) -> String {
    let digest = digest::digest(&digest::SHA256, owner.as_bytes());
    hex(&digest.as_ref()[..6])
}

/// The engine's name of the object `owner` calls `name`.
pub(crate) fn engine_name(owner: &str, name: &str) -> String {
    format!("dw-{}-{name}", tag(owner))
}

/// The name `owner` gives the object named `engine` on the engine (with or
/// without Docker's leading `/`), when the name is one of `owner`'s.
pub(crate) fn user_name<'a>(owner: &str, engine: &'a str) -> Option<&'a str> {
    let engine = engine.strip_prefix('/').unwrap_or(engine);
    let rest = engine.strip_prefix("dw-")?;
    let rest = rest.strip_prefix(tag(owner).as_str())?;
    rest.strip_prefix('-')
}

/// Refuses a name a user may not give: empty, too long, with characters
/// outside Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, or shaped like an id
/// (12 or more hex digits and nothing else).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), CallError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || name.len() > MAX_NAME {
        return Err(invalid_input(format!(
            "a {what} name is 1 to {MAX_NAME} of [a-zA-Z0-9_.-], starting with a letter or digit"
        )));
    }
    if name.len() >= MIN_ID_LEN && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid_input(format!(
            "a {what} name of {MIN_ID_LEN} or more hex digits reads as an id"
        )));
    }
    Ok(())
}

/// dockwire's own labels on an object `owner` makes, over the `asked`
/// ones minus any `dockwire.*` (which only the server writes).
pub(crate) fn owned_labels(
    owner: &str,
    asked: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = asked
        .iter()
        .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_MANAGED.into(), "true".into());
    labels.insert(LABEL_OWNER.into(), owner.to_owned());
    labels
}

/// A readable name for a user's container made without one
/// (`calm-otter-4821`): never hex-only, so never shaped like an id.
pub(crate) fn generated_name() -> String {
    const ADJECTIVES: [&str; 16] = [
        "calm", "brisk", "quiet", "lucid", "nimble", "sunny", "steady", "gentle", "proud", "witty",
        "merry", "noble", "rapid", "silent", "vivid", "keen",
    ];
    const NOUNS: [&str; 16] = [
        "otter", "heron", "lynx", "maple", "comet", "river", "finch", "badger", "cedar", "falcon",
        "harbor", "marten", "orca", "pine", "raven", "willow",
    ];
    let mut bytes = [0u8; 4];
    if rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut bytes).is_err() {
        // Uniqueness, not secrecy: the clock does.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        bytes = now.to_be_bytes();
    }
    let adjective = ADJECTIVES[usize::from(bytes[0] & 15)];
    let noun = NOUNS[usize::from(bytes[1] & 15)];
    let number = u16::from_be_bytes([bytes[2], bytes[3]]);
    format!("{adjective}-{noun}-{number}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(owner: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_OWNER.to_owned(), owner.to_owned()),
        ])
    }

    #[test]
    fn a_sealed_object_belongs_to_the_owner_its_labels_name() {
        let key = OwnerKey::ephemeral();
        let mut l = labels("alice");
        key.seal_labels(Kind::Container, "web", &mut l);
        assert_eq!(key.owner(Kind::Container, "/web", &l), Some("alice"));
    }

    #[test]
    fn unsealed_forged_or_moved_labels_belong_to_nobody() {
        let key = OwnerKey::ephemeral();
        // No seal: an image's or a plain `docker run`'s label.
        assert_eq!(key.owner(Kind::Container, "web", &labels("alice")), None);
        let mut sealed = labels("alice");
        key.seal_labels(Kind::Container, "web", &mut sealed);
        // The same labels on another object, or another kind.
        assert_eq!(key.owner(Kind::Container, "other", &sealed), None);
        assert_eq!(key.owner(Kind::Volume, "web", &sealed), None);
        // Another owner named, or a sealed label added.
        let mut renamed = sealed.clone();
        renamed.insert(LABEL_OWNER.into(), "mallory".into());
        assert_eq!(key.owner(Kind::Container, "web", &renamed), None);
        let mut marked = sealed.clone();
        marked.insert(LABEL_AUTO_REMOVE.into(), "true".into());
        assert_eq!(key.owner(Kind::Container, "web", &marked), None);
        // A lifetime added, or a sealed one changed.
        let mut timed = sealed.clone();
        timed.insert(LABEL_TTL.into(), "1h".into());
        assert_eq!(key.owner(Kind::Container, "web", &timed), None);
        let mut with_ttl = labels("alice");
        with_ttl.insert(LABEL_TTL.into(), "5s".into());
        key.seal_labels(Kind::Container, "web", &mut with_ttl);
        assert_eq!(key.owner(Kind::Container, "web", &with_ttl), Some("alice"));
        let mut longer = with_ttl.clone();
        longer.insert(LABEL_TTL.into(), "50s".into());
        assert_eq!(key.owner(Kind::Container, "web", &longer), None);
        // Another server's key.
        assert_eq!(
            OwnerKey::ephemeral().owner(Kind::Container, "web", &sealed),
            None
        );
    }

    #[test]
    fn an_image_belongs_to_the_owner_its_sealed_labels_name() {
        let key = OwnerKey::ephemeral();
        let sealed = |owner: &str, seal: String| {
            HashMap::from([
                (LABEL_IMAGE_OWNER.to_owned(), owner.to_owned()),
                (LABEL_IMAGE_SEAL.to_owned(), seal),
            ])
        };
        let alice = sealed("alice", key.image_seal("alice"));
        assert_eq!(key.image_owner(&alice), Some("alice"));
        // Alice's seal under Bob's name, a container's seal, another key.
        assert_eq!(
            key.image_owner(&sealed("bob", key.image_seal("alice"))),
            None
        );
        let container = key.seal(Kind::Container, "", &labels("alice"));
        assert_eq!(key.image_owner(&sealed("alice", container)), None);
        assert_eq!(OwnerKey::ephemeral().image_owner(&alice), None);
        assert_eq!(key.image_owner(&HashMap::new()), None);
    }

    #[test]
    fn a_users_names_are_its_own_and_never_hex() {
        let name = engine_name("alice", "web");
        assert!(name.starts_with("dw-") && name.ends_with("-web"));
        assert_eq!(user_name("alice", &name), Some("web"));
        assert_eq!(user_name("alice", &format!("/{name}")), Some("web"));
        assert_eq!(user_name("bob", &name), None);
        assert_ne!(engine_name("bob", "web"), name);
        assert!(!name.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn generated_names_are_valid_readable_and_not_ids() {
        for _ in 0..64 {
            let name = generated_name();
            assert!(check_name("container", &name).is_ok(), "{name}");
            assert_eq!(name.split('-').count(), 3, "{name}");
        }
    }

    #[test]
    fn names_outside_dockers_alphabet_are_refused() {
        assert!(check_name("container", "web-1.a_b").is_ok());
        assert!(check_name("container", "db").is_ok());
        assert!(check_name("container", "402f151820c").is_ok());
        for bad in [
            "",
            "-x",
            "a/b",
            "a b",
            "é",
            &"x".repeat(MAX_NAME + 1),
            "402f151820cd",
            &"ab".repeat(32),
        ] {
            assert!(check_name("container", bad).is_err(), "{bad:?}");
        }
    }
}
