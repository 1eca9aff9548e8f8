//! Users' images: whose an image is, which images a user may see and use,
//! and the names users give theirs.
//!
//! An image a user builds or commits is sealed as its own
//! ([`LABEL_IMAGE_OWNER`] and [`LABEL_IMAGE_SEAL`], see
//! [`OwnerKey::image_seal`]), and every name a user gives an image lives
//! in the user's namespace: `app:1` is the engine's `dw-<tag>/app:1`, and
//! `127.0.0.1:5000/app:1` is `127.0.0.1:5000/dw-<tag>/app:1` (after the
//! registry host, so that a push lands in the registry under the
//! namespace too). No user's name can take a name that another peer's
//! image, or the operator's, holds.
//!
//! To a user, an image is:
//!
//! - its own: sealed as its own;
//! - shared: sealed as nobody's and named outside every user namespace
//!   (what admins pulled, built or tagged, and what users pulled);
//! - else invisible: another user's image, or an untagged one (a build's
//!   intermediate layers). A user gets for it exactly what it gets for a
//!   missing image: `IMAGE_NOT_FOUND`, "No such image: REFERENCE".
//!
//! A user's reference is looked up in its own namespace first, then as
//! given (a shared name, or an id).
//!
//! [`OwnerKey::image_seal`]: crate::ownership::OwnerKey::image_seal

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{ImageInspect, ImageSummary};
use dockwire_core::CallError;

use crate::access::Caller;
use crate::catalog::{IMAGE_NOT_FOUND, LABEL_IMAGE_OWNER, LABEL_IMAGE_SEAL, split_tag};
use crate::dialect;
use crate::error::{Subject, engine_error, invalid_input};
use crate::ownership::{OwnerKey, tag};
use crate::registry::registry_of;

/// How a caller sees an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Its own (and, to an admin, every image).
    Own,
    /// Nobody's, with a name outside every user namespace.
    Shared,
    /// Another user's, or untagged and nobody's.
    Hidden,
}

/// How `caller` sees an image named `tags` with `labels`.
pub(crate) fn seen(
    key: &OwnerKey,
    caller: &Caller,
    tags: &[String],
    labels: Option<&HashMap<String, String>>,
) -> Seen {
    if caller.is_admin() {
        return Seen::Own;
    }
    match labels.and_then(|l| key.image_owner(l)) {
        Some(owner) if owner == caller.owner => Seen::Own,
        Some(_) => Seen::Hidden,
        None if tags.iter().any(|t| namespace_of(t).is_none()) => Seen::Shared,
        None => Seen::Hidden,
    }
}

/// The namespace component (`dw-<tag>`) of the engine's image name
/// `name`, when it is in a user's namespace.
fn namespace_of(name: &str) -> Option<&str> {
    let path = match registry_of(name) {
        Some(registry) => &name[registry.len() + 1..],
        None => name,
    };
    let (first, _) = path.split_once('/')?;
    let tag = first.strip_prefix("dw-")?;
    (tag.len() == 12 && tag.bytes().all(|b| b.is_ascii_hexdigit())).then_some(first)
}

/// `owner`'s namespace component.
fn namespace(owner: &str) -> String {
    format!("dw-{}", tag(owner))
}

/// The engine's name of the image name `reference` that `owner` gives:
/// the namespace inserted after the registry host, if any. A digest
/// (`@sha256:…`) names no new image and is refused.
pub(crate) fn own_name(owner: &str, reference: &str) -> Result<String, CallError> {
    if reference.is_empty() || reference.contains('@') {
        return Err(invalid_input(format!(
            "{reference:?} is no image name (NAME[:TAG])"
        )));
    }
    let namespace = namespace(owner);
    Ok(match registry_of(reference) {
        Some(registry) => format!(
            "{registry}/{namespace}/{}",
            &reference[registry.len() + 1..]
        ),
        None => format!("{namespace}/{reference}"),
    })
}

/// How `caller` sees the engine's image name `name`: its own names
/// without its namespace, names outside every namespace as they are,
/// other users' names not at all.
pub(crate) fn shown_name(caller: &Caller, name: &str) -> Option<String> {
    if caller.is_admin() {
        return Some(name.to_owned());
    }
    match namespace_of(name) {
        None => Some(name.to_owned()),
        Some(ns) if ns == namespace(&caller.owner) => Some(name.replacen(&format!("{ns}/"), "", 1)),
        Some(_) => None,
    }
}

/// An engine's message as `caller` may read it: its namespace left out.
pub(crate) fn shown_message(caller: &Caller, message: &str) -> String {
    match caller.is_admin() {
        true => message.to_owned(),
        false => message.replace(&format!("{}/", namespace(&caller.owner)), ""),
    }
}

/// What a user gets for an image it may not see, as for a missing one.
pub(crate) fn not_found(reference: &str) -> CallError {
    CallError::new(IMAGE_NOT_FOUND, format!("No such image: {reference}"))
}

/// An image `caller` may use, found by its reference.
#[derive(Debug)]
pub(crate) struct Usable {
    /// The engine's name for it: the caller's reference, or its own name
    /// in its namespace.
    pub reference: String,
    /// Whether it is the caller's own (shared otherwise).
    pub own: bool,
    pub details: ImageInspect,
}

/// The image `caller` means by `reference`: for a user, in its own
/// namespace first, then as given, and only one it may see.
pub(crate) async fn resolve(
    docker: &Docker,
    key: &OwnerKey,
    caller: &Caller,
    reference: &str,
) -> Result<Usable, CallError> {
    let mut candidates = Vec::with_capacity(2);
    if !caller.is_admin() && !reference.contains('@') && !reference.starts_with("sha256:") {
        if let Ok(own) = own_name(&caller.owner, reference) {
            candidates.push(own);
        }
    }
    candidates.push(reference.to_owned());
    for candidate in candidates {
        let details = match dialect::inspect_image(docker, &candidate).await {
            Ok(details) => details,
            Err(e) => {
                let e = engine_error(Subject::Image, e);
                if e.code == IMAGE_NOT_FOUND {
                    continue;
                }
                return Err(e);
            }
        };
        let tags = details.repo_tags.clone().unwrap_or_default();
        let labels = details.config.as_ref().and_then(|c| c.labels.as_ref());
        match seen(key, caller, &tags, labels) {
            Seen::Hidden => continue,
            seen => {
                return Ok(Usable {
                    reference: candidate,
                    own: seen == Seen::Own,
                    details,
                });
            }
        }
    }
    Err(match caller.is_admin() {
        true => CallError::new(IMAGE_NOT_FOUND, format!("No such image: {reference}")),
        false => not_found(reference),
    })
}

/// `summary` as `caller` sees it, if it may: other users' names left out,
/// its own without its namespace.
pub(crate) fn shown_summary(
    key: &OwnerKey,
    caller: &Caller,
    mut summary: ImageSummary,
) -> Option<ImageSummary> {
    if seen(key, caller, &summary.repo_tags, Some(&summary.labels)) == Seen::Hidden {
        return None;
    }
    summary.repo_tags = shown_names(caller, &summary.repo_tags);
    summary.repo_digests = shown_names(caller, &summary.repo_digests);
    Some(summary)
}

/// `details` as `caller` sees them: names as [`shown_name`] says, and
/// none of the engine's storage paths on its host.
pub(crate) fn shown_details(caller: &Caller, mut details: ImageInspect) -> ImageInspect {
    if caller.is_admin() {
        return details;
    }
    details.repo_tags = details.repo_tags.map(|t| shown_names(caller, &t));
    details.repo_digests = details.repo_digests.map(|t| shown_names(caller, &t));
    details.graph_driver = None;
    details
}

fn shown_names(caller: &Caller, names: &[String]) -> Vec<String> {
    names.iter().filter_map(|n| shown_name(caller, n)).collect()
}

/// The labels that seal an image as `owner`'s.
pub(crate) fn owner_labels(key: &OwnerKey, owner: &str) -> [(String, String); 2] {
    [
        (LABEL_IMAGE_OWNER.to_owned(), owner.to_owned()),
        (LABEL_IMAGE_SEAL.to_owned(), key.image_seal(owner)),
    ]
}

/// The engine's name of the image name `reference` `caller` gives: an
/// admin's as it is, a user's in its namespace, with Docker's default tag
/// when it names none.
pub(crate) fn engine_name(caller: &Caller, reference: &str) -> Result<String, CallError> {
    if caller.is_admin() {
        return Ok(reference.to_owned());
    }
    let name = own_name(&caller.owner, reference)?;
    Ok(match split_tag(&name) {
        (_, Some(_)) => name,
        (repo, None) => format!("{repo}:latest"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn caller(owner: &str, role: Role) -> Caller {
        Caller {
            role,
            ..Caller::test_user(owner)
        }
    }

    #[test]
    fn a_users_names_live_in_its_namespace_after_the_registry() {
        let ns = namespace("alice");
        assert_eq!(own_name("alice", "app:1").unwrap(), format!("{ns}/app:1"));
        assert_eq!(
            own_name("alice", "127.0.0.1:5000/team/app").unwrap(),
            format!("127.0.0.1:5000/{ns}/team/app")
        );
        assert!(own_name("alice", "app@sha256:00").is_err());
        assert!(own_name("alice", "").is_err());
        assert_eq!(namespace_of(&format!("{ns}/app:1")), Some(ns.as_str()));
        assert_eq!(
            namespace_of(&format!("127.0.0.1:5000/{ns}/app")),
            Some(ns.as_str())
        );
        assert_eq!(namespace_of("dockwire/testbox:latest"), None);
        assert_eq!(namespace_of("dw-notahextag/app"), None);
    }

    #[test]
    fn a_user_sees_its_own_names_bare_and_no_one_elses() {
        let alice = caller("alice", Role::User);
        let bob_name = own_name("bob", "app:1").unwrap();
        let alice_name = own_name("alice", "app:1").unwrap();
        assert_eq!(shown_name(&alice, &alice_name).as_deref(), Some("app:1"));
        assert_eq!(shown_name(&alice, &bob_name), None);
        assert_eq!(
            shown_name(&alice, "busybox:latest").as_deref(),
            Some("busybox:latest")
        );
        let admin = caller("root", Role::Admin);
        assert_eq!(shown_name(&admin, &bob_name), Some(bob_name.clone()));
    }

    #[test]
    fn own_shared_and_hidden_images_as_users_see_them() {
        let key = OwnerKey::ephemeral();
        let alice = caller("alice", Role::User);
        let sealed = |owner: &str| HashMap::from(owner_labels(&key, owner));
        let alice_tags = vec![own_name("alice", "app:1").unwrap()];
        let bob_tags = vec![own_name("bob", "app:1").unwrap()];
        assert_eq!(
            seen(&key, &alice, &alice_tags, Some(&sealed("alice"))),
            Seen::Own
        );
        assert_eq!(
            seen(&key, &alice, &bob_tags, Some(&sealed("bob"))),
            Seen::Hidden
        );
        // Bob's image under a shared name is still Bob's.
        let shared = vec!["busybox:latest".to_owned()];
        assert_eq!(
            seen(&key, &alice, &shared, Some(&sealed("bob"))),
            Seen::Hidden
        );
        assert_eq!(seen(&key, &alice, &shared, None), Seen::Shared);
        // Untagged, or only in a namespace, and sealed as nobody's.
        assert_eq!(seen(&key, &alice, &[], None), Seen::Hidden);
        assert_eq!(seen(&key, &alice, &bob_tags, None), Seen::Hidden);
        // A seal forged under another key is nobody's.
        let forged = HashMap::from(owner_labels(&OwnerKey::ephemeral(), "alice"));
        assert_eq!(seen(&key, &alice, &alice_tags, Some(&forged)), Seen::Hidden);
        let admin = caller("root", Role::Admin);
        assert_eq!(seen(&key, &admin, &[], None), Seen::Own);
    }

    #[test]
    fn a_users_new_name_gets_dockers_default_tag() {
        let alice = caller("alice", Role::User);
        let ns = namespace("alice");
        assert_eq!(
            engine_name(&alice, "app").unwrap(),
            format!("{ns}/app:latest")
        );
        assert_eq!(
            engine_name(&alice, "127.0.0.1:5000/app").unwrap(),
            format!("127.0.0.1:5000/{ns}/app:latest")
        );
        let admin = caller("root", Role::Admin);
        assert_eq!(engine_name(&admin, "app").unwrap(), "app");
    }
}
