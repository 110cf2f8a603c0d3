//! Resources (timers, locks, channels' semaphores) and async ops, the only
//! links from a waiting task to what it waits on.

use super::location::{LocId, Locations};
use super::time::Ts;
use super::update::{NewAsyncOp, NewResource, OpSource};
use std::num::NonZeroU64;
use std::sync::Arc;

/// A live or recently dropped resource. Kept to 56 bytes: a target may
/// have one per task (a `Sleep` each).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: u64,
    /// What every resource made at its site shares (interned).
    pub shape: Arc<Shape>,
    /// The parent resource (console ids are never 0).
    parent: Option<NonZeroU64>,
    pub created_at: Option<Ts>,
    pub dropped_at: Option<Ts>,
    /// The latest attributes (`permits=3 locked=true …`), as text
    /// (interned: resources with the same attributes share it).
    pub attributes: Option<Arc<str>>,
}

/// What the resources made at one site share: kind, type, location, and
/// whether tokio made it for itself.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// `timer`, `Mutex`, `Semaphore`, …
    pub kind: Arc<str>,
    pub concrete_type: Arc<str>,
    pub location: Option<LocId>,
    pub internal: bool,
}

impl Resource {
    pub fn from_wire(
        new: &NewResource,
        locations: &mut Locations,
        types: &mut Interner,
        shapes: &mut Shapes,
    ) -> Self {
        let kind = match &new.kind {
            super::update::ResourceKind::Timer => types.intern("timer"),
            super::update::ResourceKind::Other(k) => types.intern(k),
        };
        let shape = shapes.intern(Shape {
            kind,
            concrete_type: types.intern(&new.concrete_type),
            location: new.location.as_ref().map(|l| locations.intern(Some(l))),
            internal: new.internal,
        });
        Resource {
            id: new.id,
            shape,
            parent: new.parent.and_then(NonZeroU64::new),
            created_at: None,
            dropped_at: None,
            attributes: None,
        }
    }

    pub fn kind(&self) -> &Arc<str> {
        &self.shape.kind
    }

    pub fn concrete_type(&self) -> &Arc<str> {
        &self.shape.concrete_type
    }

    pub fn location(&self) -> Option<LocId> {
        self.shape.location
    }

    pub fn internal(&self) -> bool {
        self.shape.internal
    }

    pub fn parent(&self) -> Option<u64> {
        self.parent.map(NonZeroU64::get)
    }

    /// Takes what a repeated registration of the resource says.
    pub fn reregistered(&mut self, again: Resource) {
        self.shape = again.shape;
        self.parent = again.parent;
    }
}

/// Resource shapes, one per site.
pub type Shapes = super::intern::Shared<Shape>;

#[derive(Clone, Debug, PartialEq)]
pub struct AsyncOp {
    pub id: u64,
    pub source: OpSource,
    pub parent: Option<u64>,
    pub resource: Option<u64>,
    pub task: Option<u64>,
    pub created_at: Option<Ts>,
    pub dropped_at: Option<Ts>,
}

impl AsyncOp {
    pub fn from_wire(new: &NewAsyncOp) -> Self {
        AsyncOp {
            id: new.id,
            source: new.source,
            parent: new.parent,
            resource: new.resource,
            task: None,
            created_at: None,
            dropped_at: None,
        }
    }

    pub fn is_live(&self) -> bool {
        self.dropped_at.is_none()
    }
}

/// The latest pending poll op seen for a task (transient data: use when
/// present, never depend on it).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingPoll {
    pub resource: Option<u64>,
    pub async_op: Option<u64>,
    pub name: Arc<str>,
    pub at: Option<Ts>,
}

/// Strings that repeat across many entities (type names, attribute
/// texts), one allocation per distinct string.
pub type Interner = super::intern::Shared<str>;
