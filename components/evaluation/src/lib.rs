//! Off-policy evaluation: what a candidate policy would have earned,
//! estimated from decisions another policy logged, before it serves a
//! single request.
//!
//! This crate owns the logged-data format (Vowpal Wabbit's decision-service
//! JSON, DSJSON) and the estimators. `docs/OPE.md` describes both.
