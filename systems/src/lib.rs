//! The scheduled bevy_ecs systems of the decision pipeline (ingest, features,
//! cache, infer, decide, validate, respond). They arrive with the engine
//! issue; today this crate only fixes the place in the dependency graph:
//! `components <- backends <- systems <- engine <- server`.
