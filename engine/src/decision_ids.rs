//! Decision ids written into a caller's buffer: what a host that answers
//! many decisions (the server's binary protocol) uses instead of
//! [`Engine::decision_id`], so that writing an id allocates nothing once
//! the buffer has grown.

use crate::engine::Engine;
use cx_domain::pipeline::Ticket;
use cx_systems::resources::DecisionLogging;

impl Engine {
    /// Appends the id of the decision of `ticket` to `out` (the string
    /// [`Engine::decision_id`] returns; at most 44 bytes: a prefix of at
    /// most 30 and a 13-digit base-36 ticket).
    pub fn write_decision_id(&self, ticket: Ticket, out: &mut String) {
        self.world
            .resource::<DecisionLogging>()
            .write_id(ticket, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use cx_domain::pipeline::Ticket;

    #[test]
    fn written_ids_are_the_decision_ids_and_append() {
        let engine = Engine::builder().seed(3).build().expect("default engine");
        let mut out = String::from("x");
        engine.write_decision_id(Ticket(37), &mut out);
        assert_eq!(out, format!("x{}", engine.decision_id(Ticket(37))));
        assert!(out.ends_with("-11"), "{out}: ticket 37 in base 36");
        assert_eq!(
            cx_domain::feedback::id_key(&out[1..]),
            engine.decision_key(Ticket(37))
        );
    }
}
