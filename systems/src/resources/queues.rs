//! The queues a request passes through: the bounded ingress from the host,
//! the per-stage queues of request entities inside the schedule
//! ([`RequestQueues`]), the bounded egress back to the host, and the spare
//! contexts handed back for reuse.
//!
//! Layout: a stage's queue is a `VecDeque` of `(ticket, entity)` pairs,
//! each reserved for the whole pool at start, so moving a request from one
//! stage to the next is a pop and a push that never allocate. A system
//! reaches its entities' components by entity (`Query::get_mut`), so it
//! visits only its own requests, never scanning and skipping the others.

use bevy_ecs::entity::Entity;
use bevy_ecs::prelude::Resource;
use crossbeam::queue::ArrayQueue;
use cx_domain::pipeline::{Decision, Request, Stage, Ticket};
use cx_features::RequestContext;
use std::collections::VecDeque;
use std::sync::Arc;

/// One request waiting in the ingress.
#[derive(Debug)]
pub struct Submission {
    /// Its ticket.
    pub ticket: Ticket,
    /// What to decide.
    pub request: Request,
    /// Raw wall-clock reading at submission (latency statistics only).
    pub submitted_raw: u64,
}

/// The bounded ingress queue; `submit` pushes, the ingest system pops.
#[derive(Resource, Clone)]
pub struct Ingress(pub Arc<ArrayQueue<Submission>>);

/// The bounded egress queue; the respond system pushes, `poll` pops. Sized
/// like the in-flight limit, so it cannot overflow while admission holds.
#[derive(Resource, Clone)]
pub struct Egress(pub Arc<ArrayQueue<Decision>>);

/// Request contexts of decided requests, handed back to the host for
/// reuse: the respond system pushes each one it releases (dropping it when
/// the queue is full), and the host pops one to fill for its next
/// submission, so that a context's strings and lists keep their capacity
/// and a host that decodes into them allocates nothing once they have
/// grown. Sized like the in-flight limit.
#[derive(Resource, Clone)]
pub struct SpareContexts(pub Arc<ArrayQueue<RequestContext>>);

/// A request entity in a stage's queue, with its ticket (the decide stage
/// orders by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedRequest {
    /// The request's ticket.
    pub ticket: Ticket,
    /// Its entity.
    pub entity: Entity,
}

/// The pool of request entities and the queue of each stage.
///
/// Every pooled entity is in exactly one place: the free list, or the queue
/// of the stage it awaits (while a system works on its queue, in that
/// system's hands). The pool never grows: its size is fixed when the
/// pipeline is installed, and every queue has room for all of it.
#[derive(Resource, Debug)]
pub struct RequestQueues {
    pool: usize,
    free: Vec<Entity>,
    awaiting: [VecDeque<QueuedRequest>; Stage::COUNT],
}

impl RequestQueues {
    /// Queues for a pool of `entities`, all free.
    pub fn new(entities: Vec<Entity>) -> Self {
        let pool = entities.len();
        Self {
            pool,
            free: entities,
            awaiting: std::array::from_fn(|_| VecDeque::with_capacity(pool)),
        }
    }

    /// Entities in the pool.
    pub fn pool(&self) -> usize {
        self.pool
    }

    /// A free entity, if any.
    pub fn take_free(&mut self) -> Option<Entity> {
        self.free.pop()
    }

    /// Returns `entity` to the free list.
    ///
    /// # Panics
    /// When every pooled entity is already free: a double release.
    pub fn release(&mut self, entity: Entity) {
        assert!(
            self.free.len() < self.pool,
            "entity {entity} released into a full pool"
        );
        self.free.push(entity);
    }

    /// Queues `request` for `stage`.
    ///
    /// # Panics
    /// When the queue already holds the whole pool: more requests than
    /// entities, a broken invariant (the queue would otherwise grow).
    pub fn push(&mut self, stage: Stage, request: QueuedRequest) {
        let queue = &mut self.awaiting[stage.index()];
        assert!(
            queue.len() < self.pool,
            "the {stage} queue already holds all {} entities",
            self.pool
        );
        queue.push_back(request);
    }

    /// Takes `stage`'s queue for its system to work through, leaving an
    /// empty one (which owns no memory) until [`RequestQueues::restore`].
    /// The system pushes only to later stages meanwhile.
    pub fn take(&mut self, stage: Stage) -> VecDeque<QueuedRequest> {
        std::mem::take(&mut self.awaiting[stage.index()])
    }

    /// Puts back the queue [`RequestQueues::take`] gave, with whatever the
    /// system left in it (requests held for a later tick).
    ///
    /// # Panics
    /// When something was pushed to `stage` while its queue was taken.
    pub fn restore(&mut self, stage: Stage, queue: VecDeque<QueuedRequest>) {
        let slot = &mut self.awaiting[stage.index()];
        assert!(
            slot.is_empty(),
            "{} requests were pushed to the {stage} queue while its system held it",
            slot.len()
        );
        *slot = queue;
    }

    /// The requests awaiting `stage`, in order.
    pub fn awaiting(&self, stage: Stage) -> &VecDeque<QueuedRequest> {
        &self.awaiting[stage.index()]
    }

    /// Free entities.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Entities holding a request (not free).
    pub fn in_flight(&self) -> usize {
        self.pool - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: u32) -> RequestQueues {
        RequestQueues::new(
            (0..n)
                .map(Entity::from_raw_u32)
                .map(Option::unwrap)
                .collect(),
        )
    }

    fn queued(ticket: u64, entity: Entity) -> QueuedRequest {
        QueuedRequest {
            ticket: Ticket(ticket),
            entity,
        }
    }

    #[test]
    fn entities_move_between_queues_without_growing_them() {
        let mut q = queues(2);
        let a = q.take_free().unwrap();
        let b = q.take_free().unwrap();
        assert_eq!(q.take_free(), None, "the pool is 2");
        assert_eq!(q.in_flight(), 2);
        q.push(Stage::Features, queued(1, a));
        q.push(Stage::Features, queued(2, b));
        let mut features = q.take(Stage::Features);
        while let Some(r) = features.pop_front() {
            q.push(Stage::Cache, r);
        }
        q.restore(Stage::Features, features);
        let cache: Vec<u64> = q
            .awaiting(Stage::Cache)
            .iter()
            .map(|r| r.ticket.0)
            .collect();
        assert_eq!(cache, [1, 2], "in order");
        let capacity = q.awaiting(Stage::Cache).capacity();
        assert!(capacity >= 2);
        q.release(a);
        q.release(b);
        assert_eq!(q.free(), 2);
    }

    #[test]
    #[should_panic(expected = "full pool")]
    fn a_double_release_is_a_broken_invariant() {
        let mut q = queues(1);
        let a = q.take_free().unwrap();
        q.release(a);
        q.release(a);
    }

    #[test]
    #[should_panic(expected = "while its system held it")]
    fn pushing_to_a_taken_queue_is_a_broken_invariant() {
        let mut q = queues(1);
        let a = q.take_free().unwrap();
        let taken = q.take(Stage::Decide);
        q.push(Stage::Decide, queued(1, a));
        q.restore(Stage::Decide, taken);
    }
}
