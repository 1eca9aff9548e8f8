//! What dockwire keeps on disk, in its state directory (mode 0700, every
//! file mode 0600):
//!
//! - `identity.pem`: this user's certificate and private key, made on first
//!   use. A server presents it to clients; a client presents it to servers.
//! - `authorized-peers` (servers): the clients admitted over QUIC, one per
//!   line: `FINGERPRINT NAME ROLE` (`admin` or `user`); `#` starts a
//!   comment. Managed by `dockwire trust`, read again whenever it changes.
//! - `owner.key` (servers): 32 random bytes, the key that seals which peer
//!   owns each container, volume and network the server makes (see
//!   `dockwire_docker::ownership`); made on first start.
//! - `known-servers` (clients): `HOST:PORT FINGERPRINT` per line, the
//!   servers this client trusted on first use and insists on since.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use dockwire_docker::ownership::OWNER_KEY_LEN;
use dockwire_docker::{OwnerKey, Role};
use dockwire_service::quic::{Fingerprint, Identity};

use crate::error::Failure;

/// The state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// `--state-dir`, else `$XDG_DATA_HOME/dockwire`, else
    /// `~/.local/share/dockwire`. Made (mode 0700) if missing.
    pub fn open(given: Option<&Path>) -> Result<StateDir, Failure> {
        let path = match given {
            Some(path) => path.to_owned(),
            None => default_dir().ok_or_else(|| {
                Failure::local(
                    "find the state directory",
                    "neither XDG_DATA_HOME nor HOME is set; pass --state-dir",
                )
            })?,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| Failure::local(format!("create {}", path.display()), e))?;
        Ok(StateDir { path })
    }

    /// The state directory, if it exists: it is not made.
    pub fn existing(given: Option<&Path>) -> Option<StateDir> {
        let path = given.map(Path::to_owned).or_else(default_dir)?;
        path.is_dir().then_some(StateDir { path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This user's identity, made and saved on first use.
    pub fn identity(&self) -> Result<Identity, Failure> {
        let path = self.path.join("identity.pem");
        let what = || format!("load the identity in {}", path.display());
        if let Some(text) = read_if_exists(&path, what)? {
            check_private(&path)?;
            return Identity::from_pem(&text).map_err(|e| Failure::local(what(), e));
        }
        let identity =
            Identity::generate("dockwire").map_err(|e| Failure::local("make an identity", e))?;
        write_private(&path, identity.to_pem().as_bytes(), true)
            .map_err(|e| Failure::local(format!("save {}", path.display()), e))?;
        Ok(identity)
    }

    /// The key that seals ownership (`owner.key`), made and saved on first
    /// use; refused when others may read it, like the identity.
    pub fn owner_key(&self) -> Result<OwnerKey, Failure> {
        let path = self.path.join("owner.key");
        let what = || format!("load the owner key in {}", path.display());
        let read = || -> Result<Option<OwnerKey>, Failure> {
            match fs::read(&path) {
                Ok(bytes) if bytes.len() == OWNER_KEY_LEN => {
                    check_private(&path)?;
                    Ok(Some(OwnerKey::from_bytes(&bytes)))
                }
                Ok(bytes) => Err(Failure::local(
                    what(),
                    format!("it holds {} bytes, not {OWNER_KEY_LEN}", bytes.len()),
                )),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Failure::local(what(), e)),
            }
        };
        if let Some(key) = read()? {
            return Ok(key);
        }
        let bytes = OwnerKey::generate().map_err(|_| {
            Failure::local("make an owner key", "the system's random source failed")
        })?;
        match write_private(&path, &bytes, true) {
            Ok(()) => Ok(OwnerKey::from_bytes(&bytes)),
            // Another server on this state directory made it first: its key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                read()?.ok_or_else(|| Failure::local(what(), "it vanished"))
            }
            Err(e) => Err(Failure::local(format!("save {}", path.display()), e)),
        }
    }

    /// The authorized-peers file.
    pub fn authorized(&self) -> Authorized {
        Authorized::new(self.path.join("authorized-peers"))
    }

    /// The known-servers file.
    pub fn known_servers(&self) -> KnownServers {
        KnownServers {
            path: self.path.join("known-servers"),
        }
    }

    /// The named hosts (`dockwire context`).
    pub fn contexts(&self) -> crate::contexts::Contexts {
        crate::contexts::Contexts::new(self.path.join("contexts"))
    }
}

fn default_dir() -> Option<PathBuf> {
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(data).join("dockwire"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".local/share/dockwire"))
}

/// The text of the file at `path`; `None` when there is none.
pub(crate) fn read_if_exists(
    path: &Path,
    what: impl Fn() -> String,
) -> Result<Option<String>, Failure> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::local(what(), e)),
    }
}

/// Refuses a private file that others may read, as ssh does.
fn check_private(path: &Path) -> Result<(), Failure> {
    let mode = fs::metadata(path)
        .map_err(|e| Failure::local(format!("check {}", path.display()), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Failure::local(
            format!("use {}", path.display()),
            format!(
                "it is readable by others (mode {:o}); run `chmod 600` on it",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600: as a new file (`new`), or by
/// replacing it atomically through a temporary file beside it.
pub(crate) fn write_private(path: &Path, bytes: &[u8], new: bool) -> io::Result<()> {
    let target = match new {
        true => path.to_owned(),
        false => path.with_extension(format!("tmp{}", std::process::id())),
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if !new {
        fs::rename(&target, path)?;
    }
    Ok(())
}

/// A name a peer may have: letters, digits and `._@-`, 1 to 64 of them,
/// not starting with a punctuation mark. No `:`, so that no name can pass
/// for a Unix peer (`uid:0`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok && name.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

/// One line of `authorized-peers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// Its name, for logs and messages (what it owns and may do follows
    /// its fingerprint).
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// The authorized-peers file, read again whenever its modification time
/// or size changes.
#[derive(Clone)]
pub struct Authorized {
    path: PathBuf,
    cache: Arc<Mutex<Option<Loaded>>>,
}

/// The file's modification time and size, and the peers read then.
type Loaded = (Stamp, Arc<Vec<Peer>>);
type Stamp = (Option<SystemTime>, u64);

impl Authorized {
    fn new(path: PathBuf) -> Self {
        Authorized {
            path,
            cache: Arc::default(),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The peers, as the file says now. A file that cannot be read or
    /// parsed admits nobody (and says why in the server's log).
    pub fn peers(&self) -> Arc<Vec<Peer>> {
        let stamp = match fs::metadata(&self.path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(_) => return Arc::default(),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, peers)) = cache.as_ref() {
            if *seen == stamp {
                return peers.clone();
            }
        }
        let peers = match self.load() {
            Ok(peers) => Arc::new(peers),
            Err(e) => {
                tracing::error!("{e}; admitting no QUIC peer until it is fixed");
                Arc::default()
            }
        };
        *cache = Some((stamp, peers.clone()));
        peers
    }

    /// The peer with this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &Fingerprint) -> Option<Peer> {
        self.peers()
            .iter()
            .find(|p| p.fingerprint == *fingerprint)
            .cloned()
    }

    /// Reads and parses the file; a missing file is no peers.
    pub fn load(&self) -> Result<Vec<Peer>, Failure> {
        let what = || format!("read {}", self.path.display());
        let Some(text) = read_if_exists(&self.path, what)? else {
            return Ok(Vec::new());
        };
        check_private(&self.path)?;
        parse_peers(&text)
            .map_err(|(line, why)| Failure::local(what(), format!("line {line}: {why}")))
    }

    /// Adds (or replaces, by fingerprint) a peer. A name already used by
    /// another fingerprint is refused.
    pub fn add(&self, peer: Peer) -> Result<(), Failure> {
        let mut peers = self.load()?;
        if let Some(other) = peers
            .iter()
            .find(|p| p.name == peer.name && p.fingerprint != peer.fingerprint)
        {
            return Err(Failure::local(
                format!("trust {}", peer.name),
                format!(
                    "the name is already used by {}; remove it first or choose another",
                    other.fingerprint
                ),
            ));
        }
        peers.retain(|p| p.fingerprint != peer.fingerprint);
        peers.push(peer);
        self.save(&peers)
    }

    /// Removes the peer with this name or fingerprint: whether there was one.
    pub fn remove(&self, name_or_fingerprint: &str) -> Result<bool, Failure> {
        let mut peers = self.load()?;
        let fingerprint = Fingerprint::from_str(name_or_fingerprint).ok();
        let before = peers.len();
        peers.retain(|p| p.name != name_or_fingerprint && Some(p.fingerprint) != fingerprint);
        if peers.len() == before {
            return Ok(false);
        }
        self.save(&peers)?;
        Ok(true)
    }

    fn save(&self, peers: &[Peer]) -> Result<(), Failure> {
        let mut text = String::from("# dockwire authorized peers: FINGERPRINT NAME ROLE\n");
        for p in peers {
            text.push_str(&format!(
                "{} {} {}\n",
                p.fingerprint,
                p.name,
                role_name(p.role)
            ));
        }
        write_private(&self.path, text.as_bytes(), false)
            .map_err(|e| Failure::local(format!("write {}", self.path.display()), e))
    }
}

/// `admin` or `user`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        _ => "user",
    }
}

/// The peers of an authorized-peers text, or the first bad line's number
/// and what is wrong with it.
fn parse_peers(text: &str) -> Result<Vec<Peer>, (usize, String)> {
    let mut peers: Vec<Peer> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: String| (i + 1, why);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [fingerprint, name, role] = fields.as_slice() else {
            return Err(bad("expected FINGERPRINT NAME ROLE".into()));
        };
        let fingerprint = Fingerprint::from_str(fingerprint).map_err(|e| bad(e.to_string()))?;
        if !valid_name(name) {
            return Err(bad(format!("{name:?} is not a valid name")));
        }
        let role = match *role {
            "admin" => Role::Admin,
            "user" => Role::User,
            other => return Err(bad(format!("{other:?} is not a role (admin or user)"))),
        };
        if peers.iter().any(|p| p.name == *name) {
            return Err(bad(format!("the name {name} is listed twice")));
        }
        peers.push(Peer {
            fingerprint,
            name: (*name).to_owned(),
            role,
        });
    }
    Ok(peers)
}

/// The known-servers file.
#[derive(Clone, Debug)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint remembered for `server` (`HOST:PORT`).
    pub fn get(&self, server: &str) -> Result<Option<Fingerprint>, Failure> {
        Ok(self
            .load()?
            .into_iter()
            .find(|(s, _)| s == server)
            .map(|(_, f)| f))
    }

    /// Remembers `fingerprint` for `server`.
    pub fn remember(&self, server: &str, fingerprint: Fingerprint) -> Result<(), Failure> {
        let mut known = self.load()?;
        known.retain(|(s, _)| s != server);
        known.push((server.to_owned(), fingerprint));
        let text: String = known.iter().map(|(s, f)| format!("{s} {f}\n")).collect();
        write_private(&self.path, text.as_bytes(), false)
            .map_err(|e| Failure::local(format!("write {}", self.path.display()), e))
    }

    fn load(&self) -> Result<Vec<(String, Fingerprint)>, Failure> {
        let what = || format!("read {}", self.path.display());
        let Some(text) = read_if_exists(&self.path, what)? else {
            return Ok(Vec::new());
        };
        let mut known = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .split_once(' ')
                .and_then(|(s, f)| Some((s.to_owned(), Fingerprint::from_str(f.trim()).ok()?)));
            let Some(entry) = parsed else {
                return Err(Failure::local(
                    what(),
                    format!("line {} is not HOST:PORT FINGERPRINT", i + 1),
                ));
            };
            known.push(entry);
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
    const B: &str = "bb00000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn names_are_plain_and_cannot_pass_for_a_unix_peer() {
        for good in ["ci", "alice@laptop", "runner-1", "a.b_c", &"x".repeat(64)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "uid:0", "-x", ".x", "a b", "é", &"x".repeat(65), "a/b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn authorized_peers_parse_with_comments_and_refuse_bad_lines() {
        let text = format!("# header\n\n{A} alice user # laptop\n{B} ci admin\n");
        let peers = parse_peers(&text).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(
            (peers[0].name.as_str(), peers[0].role),
            ("alice", Role::User)
        );
        assert_eq!((peers[1].name.as_str(), peers[1].role), ("ci", Role::Admin));
        for (bad, line) in [
            (format!("{A} alice"), 1),
            (format!("{A} alice root"), 1),
            ("xyz alice user".to_owned(), 1),
            (format!("{A} uid:0 admin"), 1),
            (format!("{A} alice user\n{B} alice user"), 2),
        ] {
            assert_eq!(parse_peers(&bad).unwrap_err().0, line, "{bad}");
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dockwire-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_state_is_private_and_the_identity_is_made_once() {
        let dir = temp_dir("identity");
        let state = StateDir::open(Some(&dir)).unwrap();
        let first = state.identity().unwrap();
        let again = state.identity().unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("identity.pem")), 0o600);
        fs::set_permissions(dir.join("identity.pem"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(state.identity().is_err(), "a readable key was used");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_owner_key_is_made_once_private_and_refused_when_readable() {
        let dir = temp_dir("owner-key");
        let state = StateDir::open(Some(&dir)).unwrap();
        state.owner_key().unwrap();
        let path = dir.join("owner.key");
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), OWNER_KEY_LEN);
        state.owner_key().unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes, "the key was made again");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(state.owner_key().is_err(), "a readable key was used");
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(state.owner_key().is_err(), "a truncated key was used");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn trust_add_replace_remove_and_reload() {
        let dir = temp_dir("trust");
        let state = StateDir::open(Some(&dir)).unwrap();
        let trust = state.authorized();
        let a = Fingerprint::from_str(A).unwrap();
        let b = Fingerprint::from_str(B).unwrap();
        trust
            .add(Peer {
                fingerprint: a,
                name: "alice".into(),
                role: Role::User,
            })
            .unwrap();
        assert_eq!(trust.by_fingerprint(&a).unwrap().role, Role::User);
        // Same fingerprint: replaced (promoted).
        trust
            .add(Peer {
                fingerprint: a,
                name: "alice".into(),
                role: Role::Admin,
            })
            .unwrap();
        assert_eq!(trust.by_fingerprint(&a).unwrap().role, Role::Admin);
        // Same name, other fingerprint: refused.
        assert!(
            trust
                .add(Peer {
                    fingerprint: b,
                    name: "alice".into(),
                    role: Role::User
                })
                .is_err()
        );
        trust
            .add(Peer {
                fingerprint: b,
                name: "bob".into(),
                role: Role::User,
            })
            .unwrap();
        assert_eq!(trust.peers().len(), 2);
        let mode = fs::metadata(trust.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(trust.remove("alice").unwrap());
        assert!(trust.remove(B).unwrap());
        assert!(!trust.remove("carol").unwrap());
        assert!(trust.by_fingerprint(&a).is_none());
        assert!(trust.peers().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn known_servers_remember_one_fingerprint_per_server() {
        let dir = temp_dir("known");
        let known = StateDir::open(Some(&dir)).unwrap().known_servers();
        let a = Fingerprint::from_str(A).unwrap();
        let b = Fingerprint::from_str(B).unwrap();
        assert_eq!(known.get("h:1").unwrap(), None);
        known.remember("h:1", a).unwrap();
        known.remember("h:2", b).unwrap();
        known.remember("h:1", b).unwrap();
        assert_eq!(known.get("h:1").unwrap(), Some(b));
        assert_eq!(known.get("h:2").unwrap(), Some(b));
        fs::remove_dir_all(&dir).unwrap();
    }
}
